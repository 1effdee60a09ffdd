{#- Forecasts are per period of demand_grain; the lead time and review period are in days. -#}
{%- set lead_time = var('lead_time_days') -%}
{%- set review = var('review_period_days') -%}
{%- set last_sold_in = {'day': 'last sold on', 'week': 'last sold in the week from', 'month': 'last sold in the month from'} -%}

with

forecasts as (
    select * from {{ ref('demand_forecast') }}
),

snapshots as (
    select * from {{ ref('stg_raw__inventory_snapshots') }}
),

sales as (
    select * from {{ ref('demand_sales') }}
),

latest_stock as (
    -- A count below zero (a sale booked before its delivery) is nothing on hand: ordering to
    -- make up the shortfall of the books would overstock the shelf.
    select distinct on (product_id, store_id) product_id, store_id, greatest(on_hand, 0) as on_hand, snapshot_date
    from snapshots
    order by product_id, store_id, snapshot_date desc
),

period_days as (
    -- Days of each forecast period that fall within the lead time, and within the review
    -- period after it (a 7-day lead time is one weekly period, or seven daily ones, or
    -- 7 of a month's 28 to 31 days), from the as-of date's start and end of the period.
    select
        *,
        period_end_day - period_start_day as days_in_period,
        greatest(least({{ lead_time }}, period_end_day) - period_start_day, 0) as lead_time_days_in_period,
        greatest(
            least({{ lead_time + review }}, period_end_day) - greatest({{ lead_time }}, period_start_day),
            0
        ) as review_days_in_period
    from (
        select
            *,
            target_date - as_of_date as period_start_day,
            {{ period_shift('target_date', 1) }} - as_of_date as period_end_day
        from forecasts
    ) as forecast_periods
),

lead_time as (
    -- Demand over the lead time and its uncertainty: a period's standard deviation is
    -- read off its 95 % interval, days are treated as independent (a part of a period
    -- carries that part of its variance).
    select
        product_id,
        store_id,
        product_code,
        store_code,
        as_of_date,
        max(period_end_day) as forecast_days,
        sum(forecast_units * lead_time_days_in_period / days_in_period) as lead_time_demand,
        sqrt(sum(
            power((upper_95 - lower_95) / (2 * 1.96), 2) * lead_time_days_in_period / days_in_period
        )) as lead_time_demand_std,
        sum(forecast_units * review_days_in_period / days_in_period) as review_period_demand
    from period_days
    group by product_id, store_id, product_code, store_code, as_of_date
),

policy as (
    select
        lead_time.*,
        {{ normal_quantile(var('service_level')) }} * lead_time.lead_time_demand_std as safety_stock,
        ceil(
            lead_time.lead_time_demand
            + {{ normal_quantile(var('service_level')) }} * lead_time.lead_time_demand_std
        )::integer as reorder_point
    from lead_time
),

stock_status as (
    -- A reorder is suggested only on evidence: a stock count below the reorder point (recent,
    -- where counts are daily; a logged count holds until the next), and a forecast that
    -- reaches over the whole lead time.
    select
        policy.*,
        latest_stock.on_hand::double precision as on_hand,
        latest_stock.snapshot_date as stock_counted_on,
        case
            when latest_stock.on_hand is null then 'no stock count'
            {%- if var('stock_counts') == 'daily' %}
            when latest_stock.snapshot_date < policy.as_of_date - {{ var('stock_count_max_age_days') }}
                then 'stock count too old'
            {%- endif %}
            when policy.forecast_days < {{ lead_time }} then 'forecast shorter than the lead time'
            when latest_stock.on_hand < policy.reorder_point then 'reorder now'
            else 'ok'
        end as stock_status
    from policy
    left join latest_stock
        on latest_stock.product_id = policy.product_id and latest_stock.store_id = policy.store_id
),

forecast_plan as (
    select
        product_id,
        store_id,
        product_code,
        store_code,
        on_hand,
        stock_counted_on,
        stock_status,
        round(lead_time_demand::numeric, 1)::double precision as lead_time_demand,
        round(safety_stock::numeric, 1)::double precision as safety_stock,
        reorder_point,
        reorder_point as min_level,
        ceil(lead_time_demand + safety_stock + coalesce(review_period_demand, 0))::integer as max_level,
        case
            when stock_status = 'reorder now'
                then greatest(
                    ceil(lead_time_demand + safety_stock + coalesce(review_period_demand, 0)) - on_hand,
                    0
                )
            when stock_status = 'ok' then 0
        end as suggested_order_units,
        case
            when stock_status = 'reorder now'
                then format(
                    'reorder now: %s on hand (counted %s), below the reorder point of %s '
                    '(%s units expected over the %s-day lead time)',
                    on_hand,
                    stock_counted_on,
                    reorder_point,
                    round(lead_time_demand::numeric, 1),
                    {{ lead_time }}
                )
        end as warning,
        as_of_date
    from stock_status
),

latest_forecast as (
    select max(as_of_date) as as_of_date from forecasts
),

last_sold as (
    select product_id, store_id, max(period_start) as last_sold_period
    from sales
    where units > 0
    group by product_id, store_id
),

stock_without_forecast as (
    -- Stock on hand where the latest forecast has no row: a series off sale (no sales row
    -- in var demand_dormant_days under demand_missing_periods 'unobserved', a year under
    -- 'zero') or one never sold. Nothing is ordered; the plan says what is left.
    select
        latest_stock.product_id,
        latest_stock.store_id,
        {{ key_as_written('product_id', 'latest_stock.product_id') }} as product_code,
        {{ key_as_written('store_id', 'latest_stock.store_id') }} as store_code,
        latest_stock.on_hand::double precision as on_hand,
        latest_stock.snapshot_date as stock_counted_on,
        'not forecast' as stock_status,
        null::double precision as lead_time_demand,
        null::double precision as safety_stock,
        null::integer as reorder_point,
        null::integer as min_level,
        null::integer as max_level,
        0::double precision as suggested_order_units,
        format(
            'not forecast: %s on hand (counted %s), %s',
            latest_stock.on_hand::double precision,
            latest_stock.snapshot_date,
            coalesce('{{ last_sold_in[var('demand_grain')] }} ' || last_sold.last_sold_period, 'never sold here')
        ) as warning,
        latest_forecast.as_of_date
    from latest_stock
    cross join latest_forecast
    left join last_sold
        on last_sold.product_id = latest_stock.product_id and last_sold.store_id = latest_stock.store_id
    where latest_stock.on_hand > 0
        and latest_forecast.as_of_date is not null
        and not exists (
            select 1 from forecasts
            where forecasts.product_id = latest_stock.product_id
                and forecasts.store_id = latest_stock.store_id
                and forecasts.as_of_date = latest_forecast.as_of_date
        )
),

final as (
    select * from forecast_plan
    union all
    select * from stock_without_forecast
)

select * from final
