{% macro spread_over_store_periods(rows, stores) -%}
    {#- Each row of the relation `rows` (product_id, store_id, start_date, end_date, ...) once
        per store it applies to (`applies_to`: its own, or every store of `stores` when it
        names none) and per demand period its dates touch (`period_start`). -#}
    select spread.*, periods.period_start::date as period_start
    from (
        select {{ rows }}.*, {{ rows }}.store_id as applies_to
        from {{ rows }}
        where {{ rows }}.store_id is not null
        union all
        select {{ rows }}.*, {{ stores }}.store_id as applies_to
        from {{ rows }}
        cross join {{ stores }}
        where {{ rows }}.store_id is null
    ) as spread
    cross join lateral generate_series(
        {{ period_start('spread.start_date') }}, spread.end_date, {{ period_interval() }}
    ) as periods (period_start)
{%- endmacro %}
