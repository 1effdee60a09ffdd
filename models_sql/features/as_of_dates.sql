{{ config(materialized='table') }}

with

orders as (
    select order_date from {{ ref('stg_raw__orders') }}
),

pipeline_runs as (
    select * from {{ ref('stg_ml__pipeline_runs') }}
),

backtests as (
    select * from {{ ref('stg_ml__backtests') }}
),

model_versions as (
    select * from {{ ref('stg_ml__model_versions') }}
),

data_bounds as (
    select
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        {{ period_start('max(order_date)') }} as last_period_start,
        -- The first day with no data yet: label windows must end on or before it. At week
        -- and month grain an order stands for its whole period (weekly or monthly data is
        -- dated on one day of it), so the last loaded period counts as observed.
        {{ period_shift(period_start('max(order_date)'), 1) }} as data_observed_until
    from orders
),

last_period as (
    -- How the last loaded period was dated: on one day (a weekly or monthly extract) or
    -- on several (transactions), so that training can say when it looks cut short.
    select
        data_bounds.last_period_start,
        data_bounds.last_order_date,
        count(distinct orders.order_date)::integer as last_period_order_days
    from data_bounds
    inner join orders on orders.order_date >= data_bounds.last_period_start
    group by data_bounds.last_period_start, data_bounds.last_order_date
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

{%- if demand_calendar()['months'] %}

monthly_history as (
    -- At month grain, the first days of the months in the same span: demand's as-of dates
    -- (a week start is seldom a month's first day).
    select
        {{ period_shift(period_start('s.as_of_date - 1'), '-months_back') }} as as_of_date,
        s.first_order_date,
        s.data_observed_until
    from scoring_date as s
    cross join generate_series(0, ceil({{ var('history_weeks') }} * 7 / 30.4375)::integer - 1) as months_back
),
{%- endif %}

history_dates as (
    -- The grid of as-of dates training reads.
    select as_of_date, first_order_date, data_observed_until
    from weekly_history
    {%- if demand_calendar()['months'] %}
    union
    select as_of_date, first_order_date, data_observed_until
    from monthly_history
    {%- endif %}
),

awaited_backtests as (
    -- The dates scored before, inside the history, and each model scored on them whose
    -- backtest is not written yet, with the feature table that backtest reads. A step
    -- that recorded no models (model_name NULL) keeps its date in every table.
    select
        runs.as_of_date,
        s.first_order_date,
        s.data_observed_until,
        scored.model_name,
        -- The table's name without its schema, as a dbt model names it.
        substring(model_versions.feature_relation from '[^.]+$') as feature_table
    from pipeline_runs as runs
    cross join scoring_date as s
    left join lateral jsonb_each_text(
        coalesce(runs.counters -> 'model_versions', '{}'::jsonb)
    ) as scored (model_name, model_version) on true
    left join model_versions
        on model_versions.model_name = scored.model_name
        and model_versions.model_version::text = scored.model_version
    where runs.step like 'score:%'
        and runs.status = 'succeeded'
        and runs.as_of_date < s.as_of_date
        and runs.as_of_date >= (select min(as_of_date) from weekly_history)
        and not exists (
            select 1
            from backtests
            where backtests.model_name = scored.model_name
                and backtests.as_of_date = runs.as_of_date
        )
),

past_scoring_dates as (
    -- Dates scored before, kept until every model scored on them has its backtest, and
    -- only in the tables those backtests read: a backtest reads a scored date's feature
    -- rows once its labels mature, so a build from scratch (after a setting or the SQL
    -- changed) keeps them as an incremental one does, and both let them go once read (a
    -- job run every day would otherwise keep every day's rows for the whole history, and
    -- each day's demand rows for as long as the customer value's year). Off the grid (a
    -- Wednesday of a daily run) they are not trained on: the latest matured dates, which
    -- training holds out to validate and test on, would be days rather than weeks apart.
    select
        as_of_date,
        first_order_date,
        data_observed_until,
        -- NULL (every table) when a model's table is unknown.
        case
            when bool_and(feature_table is not null)
                then jsonb_agg(distinct feature_table order by feature_table)
        end as kept_for_tables
    from awaited_backtests
    group by as_of_date, first_order_date, data_observed_until
),

dates as (
    select
        as_of_date,
        true as is_scoring_date,
        false as is_training_date,
        null::jsonb as kept_for_tables,
        data_observed_until
    from scoring_date
    union
    select as_of_date, false, true, null, data_observed_until
    from history_dates
    where as_of_date > first_order_date
        and as_of_date not in (select as_of_date from scoring_date)
    union
    select as_of_date, false, false, kept_for_tables, data_observed_until
    from past_scoring_dates
    where as_of_date > first_order_date
        and as_of_date not in (select as_of_date from history_dates)
),

final as (
    select
        dates.*,
        last_period.last_period_start,
        last_period.last_order_date,
        last_period.last_period_order_days,
        data_bounds.first_order_date
    from dates
    cross join last_period
    cross join data_bounds
)

select * from final
