{% macro delete_dates_before_history(weeks_var=none) -%}
    {#- Post-hook of a table built by as-of date: deletes the as-of dates that have left the
        history (before the spine's first, which var history_weeks sets, or more than
        var `weeks_var` weeks before the latest), which a full build does not build. An
        incremental build only adds and rebuilds dates, so without it a table run every
        week kept a week more each week, and training read more history than the settings
        say. Dates inside the history that the spine no longer holds are
        delete_dates_off_spine's. -#}
    delete from {{ this }}
    where as_of_date < (
        select
            {%- if weeks_var %}
            greatest(min(as_of_date), max(as_of_date) - 7 * {{ var(weeks_var) }})
            {%- else %}
            min(as_of_date)
            {%- endif %}
        from {{ ref('as_of_dates') }}
    )
{%- endmacro %}
