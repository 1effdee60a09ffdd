{% macro spread_over_store_periods(rows, stores, sales, spine) -%}
    {#- Each row of the relation `rows` (product_id, store_id, start_date, end_date, ...) once
        per store it applies to (`applies_to`: its own, or every store of `stores` when it
        names none) and per demand period its dates touch (`period_start`), within the
        periods a feature reads: from the first with sales (`sales`) to the last target
        period of the latest as-of date (`spine`). So a row open-ended in the source system
        (valid to 9999-12-31) spreads over a few years at most, not thousands. -#}
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
    cross join (
        select
            (select min(period_start) from {{ sales }}) as first_period,
            {{ period_shift(period_start('max(as_of_date)'), var('demand_horizon')) }} - 1 as last_day
        from {{ spine }}
    ) as bounds
    cross join lateral generate_series(
        greatest({{ period_start('spread.start_date') }}, bounds.first_period),
        least(spread.end_date, bounds.last_day),
        {{ period_interval() }}
    ) as periods (period_start)
{%- endmacro %}
