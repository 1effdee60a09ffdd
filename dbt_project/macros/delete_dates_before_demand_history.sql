{% macro delete_dates_before_demand_history() -%}
    {#- Post-hook of a demand table built by as-of date: deletes the as-of dates that have
        left the history (var demand_history_weeks before the latest as-of date), which a
        full build does not build. An incremental build only adds and rebuilds dates, so
        without it a table run every week kept a week more each week, and training read
        more history than the setting says. -#}
    delete from {{ this }}
    where as_of_date < (select max(as_of_date) from {{ ref('as_of_dates') }})
        - 7 * {{ var('demand_history_weeks') }}
{%- endmacro %}
