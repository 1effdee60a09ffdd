{{ config(indexes=[{'columns': ['product_id', 'store_id', 'period_start'], 'unique': true}]) }}

with

promotions as (
    select * from {{ ref('stg_raw__promotions') }}
),

stores as (
    select * from {{ ref('stg_raw__stores') }}
),

promotion_stores as (
    -- The stores each promotion applies to: its own, or every store when it names none.
    select promotions.*, promotions.store_id as applies_to
    from promotions
    where promotions.store_id is not null
    union all
    select promotions.*, stores.store_id as applies_to
    from promotions
    cross join stores
    where promotions.store_id is null
),

final as (
    -- One row per key, which the feature models join on equalities the planner can hash.
    -- (Matched per target row with an OR on the store, the planner compared every target
    -- of a series with every other: 36 million comparisons for the tiny sample.)
    select
        promotion_stores.product_id,
        promotion_stores.applies_to as store_id,
        periods.period_start::date as period_start,
        max(promotion_stores.discount_pct) as promo_discount_pct,
        bool_or(promotion_stores.is_feature_ad) as promo_feature_ad
    from promotion_stores
    cross join lateral generate_series(
        {{ period_start('promotion_stores.start_date') }}, promotion_stores.end_date, {{ period_interval() }}
    ) as periods (period_start)
    group by promotion_stores.product_id, promotion_stores.applies_to, periods.period_start
)

select * from final
