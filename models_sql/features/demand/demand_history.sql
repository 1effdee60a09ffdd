{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of_date',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['product_id', 'store_id', 'as_of_date'], 'unique': true}],
    )
}}

{%- set period = demand_period_days() | int %}

with

spine as (
    select * from {{ ref('as_of_dates') }}
),

sales as (
    select * from {{ ref('demand_sales') }}
),

as_of_dates as (
    -- The demand history is shorter than the spine's (var demand_history_weeks); with
    -- weekly grain only week starts qualify.
    select as_of_date
    from spine
    where as_of_date >= (select max(as_of_date) from spine) - 7 * {{ var('demand_history_weeks') }}
        {% if period == 7 %}and extract(isodow from as_of_date) = 1{% endif %}
    {% if is_incremental() -%}
        and as_of_date not in (select distinct as_of_date from {{ this }})
    {%- endif %}
),

active_series as (
    -- Product x store pairs that sold in the year before the as-of date.
    select distinct
        as_of_dates.as_of_date,
        sales.product_id,
        sales.store_id
    from as_of_dates
    inner join sales
        on sales.period_start < as_of_dates.as_of_date
        and sales.period_start >= as_of_dates.as_of_date - 365
),

recent_periods as (
    -- The 56 periods before the as-of date, dense: a period without sales has 0 units.
    select
        active_series.as_of_date,
        active_series.product_id,
        active_series.store_id,
        periods_back,
        (active_series.as_of_date - periods_back * {{ period }}) as period_start,
        coalesce(sales.units, 0) as units
    from active_series
    cross join generate_series(1, 56) as periods_back
    left join sales
        on sales.product_id = active_series.product_id
        and sales.store_id = active_series.store_id
        and sales.period_start = active_series.as_of_date - periods_back * {{ period }}
),

lags as (
    select
        as_of_date,
        product_id,
        store_id,
        max(units) filter (where periods_back = 1) as units_lag_1,
        max(units) filter (where periods_back = 7) as units_lag_7,
        max(units) filter (where periods_back = 14) as units_lag_14,
        max(units) filter (where periods_back = 28) as units_lag_28,
        avg(units) filter (where periods_back <= 7) as units_mean_7,
        stddev_samp(units) filter (where periods_back <= 7) as units_std_7,
        avg(units) filter (where periods_back <= 28) as units_mean_28,
        stddev_samp(units) filter (where periods_back <= 28) as units_std_28,
        avg((units = 0)::int) filter (where periods_back <= 28) as zero_share_28,
        {%- for weekday in range(1, 8) %}
        avg(units) filter (where extract(isodow from period_start) = {{ weekday }}) as units_mean_isodow_{{ weekday }},
        {%- endfor %}
        max(period_start) filter (where units > 0) as last_event_date
    from recent_periods
    group by as_of_date, product_id, store_id
),

final as (
    select
        product_id,
        store_id,
        as_of_date,
        units_lag_1::integer as units_lag_1,
        units_lag_7::integer as units_lag_7,
        units_lag_14::integer as units_lag_14,
        units_lag_28::integer as units_lag_28,
        units_mean_7::double precision as units_mean_7,
        units_std_7::double precision as units_std_7,
        units_mean_28::double precision as units_mean_28,
        units_std_28::double precision as units_std_28,
        zero_share_28::double precision as zero_share_28,
        {%- for weekday in range(1, 8) %}
        units_mean_isodow_{{ weekday }}::double precision as units_mean_isodow_{{ weekday }},
        {%- endfor %}
        last_event_date
    from lags
)

select * from final
