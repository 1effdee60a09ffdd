{{ config(indexes=[{'columns': ['product_id', 'store_id', 'period_start'], 'unique': true}]) }}

with

promotions as (
    select * from {{ ref('stg_raw__promotions') }}
),

stores as (
    select * from {{ ref('stg_raw__stores') }}
),

sales as (
    select * from {{ ref('demand_sales') }}
),

spine as (
    select * from {{ ref('as_of_dates') }}
),

promotion_periods as (
    {{ spread_over_store_periods('promotions', 'stores', 'sales', 'spine') }}
),

final as (
    -- One row per key, which the feature models join on equalities the planner can hash.
    -- (Matched per target row with an OR on the store, the planner compared every target
    -- of a series with every other: 36 million comparisons for the tiny sample.)
    select
        product_id,
        applies_to as store_id,
        period_start,
        max(discount_pct) as promo_discount_pct,
        bool_or(is_feature_ad) as promo_feature_ad
    from promotion_periods
    group by product_id, applies_to, period_start
)

select * from final
