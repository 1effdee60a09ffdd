{{ config(indexes=[{'columns': ['product_id', 'store_id', 'period_start'], 'unique': true}]) }}

with

shelf_prices as (
    select * from {{ ref('stg_raw__shelf_prices') }}
),

stores as (
    select * from {{ ref('stg_raw__stores') }}
),

price_stores as (
    -- The stores each price applies to: its own, or every store when it names none.
    select shelf_prices.*, shelf_prices.store_id as applies_to
    from shelf_prices
    where shelf_prices.store_id is not null
    union all
    select shelf_prices.*, stores.store_id as applies_to
    from shelf_prices
    cross join stores
    where shelf_prices.store_id is null
),

price_periods as (
    select
        price_stores.*,
        periods.period_start::date as period_start
    from price_stores
    cross join lateral generate_series(
        {{ period_start('price_stores.start_date') }}, price_stores.end_date, {{ period_interval() }}
    ) as periods (period_start)
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
