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

price_days as (
    -- Each day of a touched period that the price covers.
    select
        price_periods.*,
        days.day::date as day
    from price_periods
    cross join lateral generate_series(
        greatest(price_periods.period_start, price_periods.start_date),
        least({{ period_shift('price_periods.period_start', 1) }} - 1, price_periods.end_date),
        interval '1 day'
    ) as days (day)
),

daily_prices as (
    -- One price per day: a store's own price wins over one for all stores, then the one
    -- set from the latest day, then the latest key.
    select distinct on (product_id, applies_to, day)
        product_id,
        applies_to,
        period_start,
        day,
        shelf_price
    from price_days
    order by product_id, applies_to, day, store_id is null, start_date desc, price_id desc
),

final as (
    -- One price per key, which the feature models join on equalities the planner can hash:
    -- the mean over the period's days with a price set (a price change within the period
    -- weighs by its days), and the share of the period's days set.
    select
        product_id,
        applies_to as store_id,
        period_start,
        -- In numeric: a mean of prices in cents is exact there (2.30, not 2.3000000000000003).
        avg(shelf_price::numeric)::double precision as shelf_price,
        count(*)::double precision / ({{ period_shift('period_start', 1) }} - period_start) as days_set_share
    from daily_prices
    group by product_id, applies_to, period_start
)

select * from final
