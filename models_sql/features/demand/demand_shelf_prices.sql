{{ config(indexes=[{'columns': ['product_id', 'store_id', 'period_start'], 'unique': true}]) }}

with

shelf_prices as (
    select * from {{ ref('stg_raw__shelf_prices') }}
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

price_periods as (
    {{ spread_over_store_periods('shelf_prices', 'stores', 'sales', 'spine') }}
),

final as (
    -- One price per key, which the feature models join on equalities the planner can hash.
    -- Where several prices touch a period, a store's own price wins over one for all
    -- stores, then the one set from the latest day (a price change within the period),
    -- then the latest key.
    select distinct on (product_id, applies_to, period_start)
        product_id,
        applies_to as store_id,
        period_start,
        shelf_price
    from price_periods
    order by product_id, applies_to, period_start, store_id is null, start_date desc, price_id desc
)

select * from final
