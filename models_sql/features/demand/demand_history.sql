{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of_date',
        on_schema_change='append_new_columns',
        post_hook=["{{ delete_dates_off_spine('demand_features') }}", "{{ delete_dates_before(demand_first_as_of_date()) }}"],
        indexes=[{'columns': ['product_id', 'store_id', 'as_of_date'], 'unique': true}],
    )
}}

{%- set calendar = demand_calendar() %}
{%- set period = calendar['period_days'] %}
{#- A period without a sales row: nothing sold ('zero'), or not observed ('unobserved'). #}
{%- set missing_is_zero = var('demand_missing_periods') == 'zero' %}
{#- How long after its latest sales row a series is still forecast: a year of periods that
    sold nothing when a missing period is a zero, var demand_dormant_days when it is
    unobserved (a series no longer reported is delisted or its store closed, and its last
    level is no forecast of a shelf it is not on). #}
{%- set active_days = 365 if missing_is_zero else var('demand_dormant_days') %}

with

spine as (
    -- The dates demand_features keeps: it is built on this table's.
    {{ spine_dates('demand_features') }}
),

sales as (
    select * from {{ ref('demand_sales') }}
),

stock_outs as (
    select * from {{ ref('demand_stock_outs') }}
),

first_as_of_date as (
    {{ demand_first_as_of_date() }}
),

as_of_dates as (
    -- The as-of dates from first_as_of_date on that start a period.
    select as_of_date
    from spine
    where as_of_date >= (select as_of_date from first_as_of_date)
        and as_of_date = {{ period_start('as_of_date') }}
    {% if is_incremental() -%}
        and as_of_date not in (select distinct as_of_date from {{ this }})
    {%- endif %}
),

sales_gaps as (
    select
        product_id,
        store_id,
        period_start,
        period_start - lag(period_start) over (partition by product_id, store_id order by period_start)
            as days_since_previous_sale
    from sales
),

numbered_spells as (
    -- A new spell starts at a series' first sale and after every gap longer than it stays active.
    select
        *,
        count(*) filter (where days_since_previous_sale is null or days_since_previous_sale > {{ active_days }})
            over (partition by product_id, store_id order by period_start) as spell
    from sales_gaps
),

active_spells as (
    -- The as-of dates on which a series had a sales row within active_days before: the
    -- union of (sale, sale + active_days] over its rows, (first, last + active_days] per spell.
    -- Joined to the as-of dates per spell, not per sale, the build stays linear in the
    -- history's length (per sale, it compared every as-of date with every sale).
    select
        product_id,
        store_id,
        min(period_start) as first_sale,
        max(period_start) as last_sale,
        -- The series' first sale of all, not the spell's: a seasonal product back after
        -- months away keeps last season in its history.
        min(min(period_start)) over (partition by product_id, store_id) as series_first_sale
    from numbered_spells
    group by product_id, store_id, spell
),

active_series as (
    -- Product x store pairs with a sales row within active_days before the as-of date,
    -- with the series' first sale.
    select
        as_of_dates.as_of_date,
        active_spells.product_id,
        active_spells.store_id,
        active_spells.series_first_sale as first_sale
    from as_of_dates
    inner join active_spells
        on as_of_dates.as_of_date > active_spells.first_sale
        and as_of_dates.as_of_date <= active_spells.last_sale + {{ active_days }}
),

series_periods as materialized (
    -- The periods before the as-of date, one row each. Materialised, so that period_start
    -- is a column the join to sales matches on: computed inside that join, the planner
    -- merged on product and store alone and compared every period of a series with every
    -- sale of it (628 million comparisons, 170 s, for --scale small).
    select
        active_series.as_of_date,
        active_series.product_id,
        active_series.store_id,
        active_series.first_sale,
        periods_back,
        {{ period_shift('active_series.as_of_date', '-periods_back') }} as period_start
    from active_series
    cross join generate_series(1, {{ calendar['history'] }}) as periods_back
),

recent_periods as (
    -- Dense: a period without a sales row has 0 units, or NULL units when missing periods
    -- are unobserved. A period before the series' first sale is unknown, not 0: a product
    -- launched (or a store opened) two weeks ago has two weeks of history, not a mean
    -- pulled down by the weeks it was not on sale. A period with days out of stock counts
    -- what it would have sold in stock (unknown when out all of it): lags and means of
    -- what the shelf could sell, not of how often it was empty.
    select
        series_periods.*,
        case when series_periods.period_start >= series_periods.first_sale then
            {{ in_stock_units(('coalesce(sales.units, 0)' if missing_is_zero else 'sales.units'), 'stock_outs') }}
        end as units,
        sales.shelf_price,
        sales.had_promotion
    from series_periods
    left join sales
        on sales.product_id = series_periods.product_id
        and sales.store_id = series_periods.store_id
        and sales.period_start = series_periods.period_start
    left join stock_outs
        on stock_outs.product_id = series_periods.product_id
        and stock_outs.store_id = series_periods.store_id
        and stock_outs.period_start = series_periods.period_start
),

period_statistics as (
    -- Aggregates skip NULL units, so unobserved periods are not counted.
    select
        as_of_date,
        product_id,
        store_id,
        first_sale,
        {%- for lag in calendar['lags'] %}
        max(units) filter (where periods_back = {{ lag }}) as units_lag_{{ lag }},
        {%- endfor %}
        {%- for window in calendar['windows'] %}
        avg(units) filter (where periods_back <= {{ window }}) as units_mean_{{ window }},
        stddev_samp(units) filter (where periods_back <= {{ window }}) as units_std_{{ window }},
        {%- endfor %}
        avg((units = 0)::integer) filter (where periods_back <= {{ calendar['intermittency'] }})
            as zero_share_{{ calendar['intermittency'] }},
        {%- if period == 1 %}
        {%- for weekday in range(1, 8) %}
        avg(units) filter (where date_part('isodow', period_start) = {{ weekday }}) as units_mean_isodow_{{ weekday }},
        {%- endfor %}
        {%- else %}
        -- The same periods one year earlier: the level a year ago, for year-over-year change.
        avg(units) filter (
            where periods_back between {{ calendar['year_back'] + 1 }} and {{ calendar['year_back'] + calendar['last_year'] }}
        ) as units_mean_{{ calendar['last_year'] }}_last_year,
        -- By horizon h, the level (the first window's mean) of the periods before the target
        -- period a year back, which is year_back - h + 1 periods back: how far last year's
        -- target period moved from where the series stood, a season's own volatility.
        array[
            {%- for horizon in range(1, var('demand_horizon') + 1) %}
            avg(units) filter (
                where periods_back between {{ calendar['year_back'] - horizon + 2 }}
                    and {{ calendar['year_back'] - horizon + 1 + calendar['windows'][0] }}
            ){{ ',' if not loop.last }}
            {%- endfor %}
        ] as level_before_target_last_year,
        {%- endif %}
        (array_agg(units order by periods_back) filter (where units is not null))[1] as units_last_observed,
        -- The regular shelf price: the median over the longest window's periods without a
        -- promotion (any period when every one had one).
        coalesce(
            percentile_cont(0.5) within group (order by shelf_price)
                filter (where not had_promotion and periods_back <= {{ calendar['windows'][-1] }}),
            percentile_cont(0.5) within group (order by shelf_price)
        ) as regular_price,
        max(period_start) filter (where units > 0) as last_event_date
    from recent_periods
    -- first_sale is the series' own: one value per group.
    group by as_of_date, product_id, store_id, first_sale
),

final as (
    select
        product_id,
        store_id,
        as_of_date,
        {%- for lag in calendar['lags'] %}
        units_lag_{{ lag }}::double precision as units_lag_{{ lag }},
        {%- endfor %}
        {%- for window in calendar['windows'] %}
        -- A window without a reported period (unobserved, or out of stock all of it) holds
        -- the latest reported one: where the series stood. NULL, the log1p and rate
        -- candidates would read it as a level of 0 and, the series selling thousands, the
        -- rate's Poisson trees diverged (the real set with gaps of six weeks: WAPE 0.060 -> 0.075).
        coalesce(units_mean_{{ window }}, units_last_observed)::double precision as units_mean_{{ window }},
        units_std_{{ window }}::double precision as units_std_{{ window }},
        {%- endfor %}
        zero_share_{{ calendar['intermittency'] }}::double precision as zero_share_{{ calendar['intermittency'] }},
        {%- if period == 1 %}
        {%- for weekday in range(1, 8) %}
        units_mean_isodow_{{ weekday }}::double precision as units_mean_isodow_{{ weekday }},
        {%- endfor %}
        {%- else %}
        units_mean_{{ calendar['last_year'] }}_last_year::double precision as units_mean_{{ calendar['last_year'] }}_last_year,
        level_before_target_last_year::double precision[] as level_before_target_last_year,
        {%- endif %}
        units_last_observed::double precision as units_last_observed,
        regular_price::double precision as regular_price,
        first_sale,
        last_event_date
    from period_statistics
)

select * from final
