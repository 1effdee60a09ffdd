{% macro delete_dates_before_demand_history() -%}
    {#- Post-hook of a demand table built by as-of date: deletes the as-of dates that have
        left the history (before the first as-of date var history_weeks keeps, or more than
        var demand_history_weeks before the latest), which a full build does not build. An
        incremental build only adds and rebuilds dates, so without it a table run every
        week kept a week more each week, and training read more history than the settings
        say. -#}
    delete from {{ this }}
    where as_of_date < (
        select greatest(min(as_of_date), max(as_of_date) - 7 * {{ var('demand_history_weeks') }})
        from {{ ref('as_of_dates') }}
    )
{%- endmacro %}
