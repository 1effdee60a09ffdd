{% macro delete_dates_before(first_date=none) -%}
    {#- Post-hook of a table built by as-of date: deletes the rows of the as-of dates before
        `first_date` (a query of one date; default the spine's first, which var
        history_weeks sets), which a full build does not build. An incremental build only
        adds and rebuilds dates, so without it a table run every week kept a week more
        each week, and training read more history than the settings say. -#}
    delete from {{ this }}
    where as_of_date < (
        {{ first_date or 'select min(as_of_date) from ' ~ ref('as_of_dates') }}
    )
{%- endmacro %}
