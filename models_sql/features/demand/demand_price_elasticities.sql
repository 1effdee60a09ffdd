{{ config(indexes=[{'columns': ['product_id', 'as_of_date'], 'unique': true}]) }}

{#- Each period is compared with its series' own trailing periods, so that a store or
    product that sells more is not read as one that responds more to price. -#}
{%- set trailing_periods = 13 %}
{%- set min_trailing_periods = 4 %}
{#- How strongly a product's elasticity is drawn to the one pooled over all products, in
    units of summed squared log-price deviations: 50 is about 1,000 store-periods at 20 %
    off. A product seldom on deal borrows the pooled response rather than the noise of
    its few deal periods. -#}
{%- set prior_weight = 50 %}
{#- A log-price deviation smaller than this is the floating-point residue of a mean of
    equal prices (every product of a store marked down alike), not a price that differed:
    left out, so that no elasticity is a ratio of such residues. -#}
{%- set negligible_deviation = 1e-9 %}
{%- set missing_is_zero = var('demand_missing_periods') == 'zero' %}

with

spine as (
    {{ spine_dates('demand_features') }}
),

sales as (
    select * from {{ ref('demand_sales') }}
),

promotions as (
    select * from {{ ref('demand_promotions') }}
),

shelf_prices as (
    select * from {{ ref('demand_shelf_prices') }}
),

stock_outs as (
    select * from {{ ref('demand_stock_outs') }}
),

as_of_dates as (
    -- Only dates that start a period qualify, as in demand_history.
    select as_of_date
    from spine
    where as_of_date = {{ period_start('as_of_date') }}
),

products as (
    -- Products that ever sold: only these have demand rows to join.
    select distinct product_id
    from sales
),

series_spans as (
    select
        product_id,
        store_id,
        min(period_start) as first_period,
        max(period_start) as last_period
    from sales
    group by product_id, store_id
),

series_periods as (
    -- Every period of each series from its first with sales to its last: a price is
    -- planned for a period that was not reported too. Read only on the periods with sales,
    -- a series with weeks unreported would average other weeks' prices than the store's
    -- other products, and a markdown of everything would differ by product (the real set
    -- with two gaps of six weeks a department: an elasticity of -4 for every one).
    select
        series_spans.product_id,
        series_spans.store_id,
        period_start::date as period_start
    from series_spans
    cross join lateral generate_series(
        series_spans.first_period, series_spans.last_period, {{ period_interval() }}
    ) as period_start
),

prices as (
    -- The log of each period's planned price: the shelf price set for the period where
    -- there is one, else ln(1 - discount) (0 off promotion), the price relative to the
    -- regular one. The two are on different scales, so a period is compared only with
    -- trailing periods priced the same way.
    select
        series_periods.product_id,
        series_periods.store_id,
        series_periods.period_start,
        shelf_prices.shelf_price is not null as has_price_set,
        coalesce(ln(shelf_prices.shelf_price), ln(1 - coalesce(promotions.promo_discount_pct, 0))) as log_price_ratio
    from series_periods
    left join promotions
        on promotions.product_id = series_periods.product_id
        and promotions.store_id = series_periods.store_id
        and promotions.period_start = series_periods.period_start
    left join shelf_prices
        on shelf_prices.product_id = series_periods.product_id
        and shelf_prices.store_id = series_periods.store_id
        and shelf_prices.period_start = series_periods.period_start
),

price_deviations as (
    select
        product_id,
        store_id,
        period_start,
        log_price_ratio - avg(log_price_ratio) over series_trailing as price_deviation
    from prices
    window series_trailing as (
        partition by product_id, store_id, has_price_set order by period_start
        rows between {{ trailing_periods }} preceding and 1 preceding
    )
),

observations as (
    -- Periods with sales (and, where a period without a sales row sold nothing, every
    -- period): log units. A period with a day out of stock is left out: a deal that
    -- emptied the shelf sold less than it drew.
    select
        series_periods.product_id,
        series_periods.store_id,
        series_periods.period_start,
        ln(1 + {{ 'coalesce(sales.units, 0)' if missing_is_zero else 'sales.units' }}) as log_units
    from series_periods
    left join sales
        on sales.product_id = series_periods.product_id
        and sales.store_id = series_periods.store_id
        and sales.period_start = series_periods.period_start
    left join stock_outs
        on stock_outs.product_id = series_periods.product_id
        and stock_outs.store_id = series_periods.store_id
        and stock_outs.period_start = series_periods.period_start
    where stock_outs.product_id is null
    {%- if not missing_is_zero %}
        and sales.product_id is not null
    {%- endif %}
),

units_deviations as (
    select
        product_id,
        store_id,
        period_start,
        log_units - avg(log_units) over series_trailing as units_deviation,
        count(*) over series_trailing as trailing_count
    from observations
    window series_trailing as (
        partition by product_id, store_id order by period_start
        rows between {{ trailing_periods }} preceding and 1 preceding
    )
),

deviations as (
    select
        units_deviations.*,
        price_deviations.price_deviation
    from units_deviations
    inner join price_deviations
        on price_deviations.product_id = units_deviations.product_id
        and price_deviations.store_id = units_deviations.store_id
        and price_deviations.period_start = units_deviations.period_start
),

comparable_deviations as (
    -- Each deviation beside the mean of the other series' that period: the store's, where
    -- it sold other products then, else the chain's, where other series sold. Only periods
    -- whose price has trailing periods priced the same way take part.
    select
        product_id,
        period_start,
        price_deviation,
        units_deviation,
        count(*) over store_period as store_series,
        avg(price_deviation) over store_period as store_price_deviation,
        avg(units_deviation) over store_period as store_units_deviation,
        count(*) over chain_period as chain_series,
        avg(price_deviation) over chain_period as chain_price_deviation,
        avg(units_deviation) over chain_period as chain_units_deviation
    from deviations
    where trailing_count >= {{ min_trailing_periods }}
        and price_deviation is not null
    window
        store_period as (partition by store_id, period_start),
        chain_period as (partition by period_start)
),

within_period_deviations as (
    -- What moved the whole store (the season, a holiday, a markdown of everything at
    -- once), or for a product sold alone in its store what moved every store, is no
    -- product's response to its price: it is taken out. A period no other series sold in
    -- cannot tell a price's response from the season's and is left out: one series
    -- against its own trailing periods read a department's holiday markdowns, which come
    -- with the season's peak, as a price response (the real set cut to one department
    -- forecast worse with its elasticity than without it).
    select
        product_id,
        period_start,
        price_deviation
            - case when store_series > 1 then store_price_deviation else chain_price_deviation end
            as price_deviation,
        units_deviation
            - case when store_series > 1 then store_units_deviation else chain_units_deviation end
            as units_deviation
    from comparable_deviations
    where chain_series > 1
),

product_periods as (
    -- Per product and period, the sums a least-squares slope through the origin needs.
    select
        product_id,
        period_start,
        sum(price_deviation * units_deviation) as cross_products,
        sum(price_deviation * price_deviation) as squares
    from within_period_deviations
    where abs(price_deviation) > {{ negligible_deviation }}
    group by product_id, period_start
),

timeline as (
    -- The periods' sums and, interleaved by date, one marker row per product and as-of
    -- date, so that one running sum gives every as-of date its earlier periods' totals
    -- (linear in the history; a join of as-of dates to earlier periods is quadratic).
    select product_id, period_start as event_date, 1 as is_period, cross_products, squares
    from product_periods
    union all
    select products.product_id, as_of_dates.as_of_date, 0, 0, 0
    from products
    cross join as_of_dates
),

accumulated as (
    -- A marker sorts before the period starting on its date: only earlier periods count.
    select
        product_id,
        event_date,
        is_period,
        sum(cross_products) over running as cross_products,
        sum(squares) over running as squares
    from timeline
    window running as (
        partition by product_id order by event_date, is_period
        rows between unbounded preceding and current row
    )
),

pooled as (
    select
        product_id,
        event_date as as_of_date,
        cross_products,
        squares,
        sum(cross_products) over same_date / nullif(sum(squares) over same_date, 0) as pooled_elasticity
    from accumulated
    where is_period = 0
    window same_date as (partition by event_date)
),

final as (
    select
        product_id,
        as_of_date,
        ((cross_products + {{ prior_weight }} * pooled_elasticity) / (squares + {{ prior_weight }}))::double precision
            as price_elasticity,
        squares::double precision as price_variation
    from pooled
    where pooled_elasticity is not null
)

select * from final
