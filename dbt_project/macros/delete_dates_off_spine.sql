{% macro delete_dates_off_spine(table_name=none) -%}
    {#- Post-hook of a table built on the spine's as-of dates: deletes the dates up to its
        latest that the spine no longer holds for `table_name` (default: this table),
        which a full build does not build and an incremental one only adds to. Those are
        the dates that left the history (before the first that var history_weeks keeps:
        without this, a table run every week kept a week more each week, and training
        read more history than the settings say), an earlier build's scoring date that
        was never scored, and a date scored off the grid once the backtests that read
        this table are written. -#}
    delete from {{ this }} as built
    where built.as_of_date < (select max(as_of_date) from {{ ref('as_of_dates') }})
        and not exists (
            select 1
            from ({{ spine_dates(table_name) }}) as spine
            where spine.as_of_date = built.as_of_date
        )
{%- endmacro %}
