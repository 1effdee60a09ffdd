{% macro demand_first_as_of_date() -%}
    {#- A query of one row, column as_of_date: the first as-of date demand keeps. That is
        var demand_history_weeks before the latest as-of date (two years: a full season
        plus the longest lag, or all the data when there is less), later where the row
        budget (var demand_max_rows over the series sold in the last year times the
        horizons) holds fewer weeks, but never later than a label's length and a quarter
        before it: the as-of dates a forecast is validated and tested on
        (training.split: holdout_periods), the embargo before them and a few to train on.
        Cut to the budget alone, a large daily retailer kept too few to train
        (docs/benchmark-notes.md). Read by demand_history and by its post-hook, which
        deletes the dates before it. -#}
    {%- set recent_days = 91 %}
    with latest as (
        select max(as_of_date) as as_of_date from {{ ref('as_of_dates') }}
    ),
    budget_weeks as (
        -- At month grain, with an as-of date a month, the rows stay well within the
        -- budget; at most the history's weeks: a few series hold thousands of years, a
        -- date before any the calendar has.
        select least(
            floor({{ var('demand_max_rows') }}::numeric / greatest(1, count(*) * {{ var('demand_horizon') }})),
            {{ var('demand_history_weeks') }}
        )::integer as weeks
        from (
            select distinct product_id, store_id
            from {{ ref('demand_sales') }}
            where period_start >= (select as_of_date from latest) - 365
        ) as recent_series
    )
    select greatest(
        latest.as_of_date - 7 * {{ var('demand_history_weeks') }},
        least(
            latest.as_of_date - 7 * budget_weeks.weeks,
            {{ period_shift('latest.as_of_date', '-' ~ var('demand_horizon')) }} - {{ recent_days }}
        )
    ) as as_of_date
    from latest
    cross join budget_weeks
{%- endmacro %}
