{% macro as_of_dates_to_build(horizons, candidate_dates=none, window_end=none) -%}
    {#- In an incremental run: the as-of dates to (re)build. Those are the spine's dates
        not yet in this table, and dates already built whose label window has closed
        since (a label is NULL until its window is complete, then never changes), so a
        daily run adds about one date instead of rebuilding the history.
        `horizons` are the model's label horizons in days; `candidate_dates` is a query
        of the model's own as-of dates (column as_of_date) when they are not the spine's
        dates this table keeps (spine_dates);
        `window_end` is the SQL of the day a label window ends, given `built.as_of_date` and
        a horizon `horizon.days` (default: that many days on; demand counts periods). -#}
    {%- set window_end = window_end or 'built.as_of_date + horizon.days' %}
    with spine as (
        {% if candidate_dates is none -%}
        select as_of_date from ({{ spine_dates() }}) as kept
        {%- else -%}
        {{ candidate_dates }}
        {%- endif %}
    ),
    built as (
        select as_of_date, max(observed_until) as observed_until
        from {{ this }}
        group by as_of_date
    ),
    now_observed as (
        select max(data_observed_until) as observed_until from {{ ref('as_of_dates') }}
    )
    select spine.as_of_date
    from spine
    where not exists (select 1 from built where built.as_of_date = spine.as_of_date)
    union
    select built.as_of_date
    from built
    cross join now_observed
    where exists (
        select 1
        from unnest(array[{{ horizons | join(', ') }}]::int[]) as horizon(days)
        where {{ window_end }} > built.observed_until
            and {{ window_end }} <= now_observed.observed_until
    )
{%- endmacro %}
