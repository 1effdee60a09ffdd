{{ config(materialized='table') }}

with

orders as (
    select order_date from {{ ref('stg_raw__orders') }}
),

data_bounds as (
    select
        min(order_date) as first_order_date,
        -- The first day with no data yet: label windows must end on or before it. At week
        -- grain an order stands for its whole period (weekly data is dated on one day of
        -- the week), so the last loaded period counts as observed.
        {{ period_start('max(order_date)') }} + {{ demand_calendar()['period_days'] }} as data_observed_until
    from orders
),

scoring_date as (
    select
        {% if var('as_of_date') -%}
        '{{ var("as_of_date") }}'::date
        {%- else -%}
        data_observed_until
        {%- endif %} as as_of_date,
        first_order_date,
        data_observed_until
    from data_bounds
),

weekly_history as (
    -- Week starts (var week_start) before the scoring date, so that the history stays the
    -- same from one daily run to the next and incremental models only add the new dates.
    select
        ({{ week_start_of('s.as_of_date - 1') }} - 7 * weeks_back)::date as as_of_date,
        s.first_order_date,
        s.data_observed_until
    from scoring_date as s
    cross join generate_series(0, {{ var('history_weeks') }} - 1) as weeks_back
),

final as (
    select as_of_date, true as is_scoring_date, data_observed_until
    from scoring_date
    union
    select as_of_date, false as is_scoring_date, data_observed_until
    from weekly_history
    where as_of_date > first_order_date
        and as_of_date not in (select as_of_date from scoring_date)
)

select * from final
