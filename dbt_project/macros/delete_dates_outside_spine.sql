{% macro delete_dates_outside_spine(weeks_var=none) -%}
    {#- Post-hook of a table built by as-of date: deletes the as-of dates a full build does
        not build. Those are the dates that have left the history (before the spine's
        first, which var history_weeks sets, or more than var `weeks_var` weeks before the
        latest), and dates inside it that the spine no longer holds (an earlier build's
        scoring date that was never scored). An incremental build only adds and rebuilds
        dates, so without it a table run every week kept a week more each week, and
        training read more history than the settings say. The dates scored before are on
        the spine (as_of_dates): their backtests read them. -#}
    delete from {{ this }} as built
    where built.as_of_date < (
        select
            {%- if weeks_var %}
            greatest(min(as_of_date), max(as_of_date) - 7 * {{ var(weeks_var) }})
            {%- else %}
            min(as_of_date)
            {%- endif %}
        from {{ ref('as_of_dates') }}
    )
        or (
            built.as_of_date < (select max(as_of_date) from {{ ref('as_of_dates') }})
            and not exists (
                select 1 from {{ ref('as_of_dates') }} as spine where spine.as_of_date = built.as_of_date
            )
        )
{%- endmacro %}
