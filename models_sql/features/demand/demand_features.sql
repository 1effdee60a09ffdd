{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of_date',
        on_schema_change='append_new_columns',
        post_hook=[
            "{{ delete_dates_off_spine() }}",
            "{{ delete_dates_before('select min(as_of_date) from ' ~ ref('demand_history')) }}",
        ],
        indexes=[
            {'columns': ['product_id', 'store_id', 'as_of_date', 'horizon'], 'unique': true},
            {'columns': ['as_of_date']},
        ],
    )
}}

{%- set calendar = demand_calendar() %}
{%- set period = calendar['period_days'] %}
{%- set season = calendar['season'] %}
{%- set missing_is_zero = var('demand_missing_periods') == 'zero' %}
{#- A joined sales row's units (`sales` standing for its alias): 0 without a row, or
    unknown when missing periods are unobserved. #}
{%- set sold = 'coalesce(sales.units, 0)' if missing_is_zero else 'sales.units' %}
{#- The start of the period after the target one (its label window's end), and of the
    target period one year earlier: 364 days (the same weekday), 52 weeks or 12 months. -#}
{%- set after_target = period_shift('targets.target_date', 1) %}
{%- set year_before_target = period_shift('targets.target_date', -calendar['year_back']) %}
{#- The target period one year earlier (known once the horizon is within a year, and the
    series was on sale then), scaled to its days in stock. -#}
{%- set same_period_last_year -%}
    case
        when {{ year_before_target }} >= targets.first_sale
            and {{ year_before_target }} < targets.as_of_date
        then {{ in_stock_units(sold | replace('sales.', 'last_year.'), 'last_year_stock_outs') }}
    end
{%- endset %}
{#- The same period one season earlier, stepping back whole seasons until it lies before
    the as-of date (seasonal naive). -#}
{%- set seasonal_date = period_shift(
    'targets.target_date', '-' ~ season ~ ' * ceil(targets.horizon / ' ~ season ~ '.0)::integer'
) %}
{#- The time of year as a few sine and cosine pairs rather than month and week numbers: a
    smooth season the trees cannot fit to one year's weeks, while the last-year features
    carry holidays and other sharp annual peaks. -#}
{%- set year_harmonics = 3 %}
{#- date_part, not extract, here and below: extract returns numeric, whose arithmetic took
    a quarter of this model's time (34 -> 26 s for 1.47 M rows on --scale small, back to back). -#}
{%- set year_fraction -%}
    ((date_part('doy', targets.target_date) - 1) / 365.25)
{%- endset %}
{#- The regular shelf price: the series' recent one, or the list price before any sale. -#}
{%- set regular_price -%}
    coalesce(targets.regular_price, products.list_price)
{%- endset %}
{#- Whether a row's labels are given: on the grid and the scoring date, each as its period is
    observed; on a date scored before, all of them once its whole horizon is. -#}
{%- set labelled -%}
    (spine.is_training_date or spine.is_scoring_date
        or {{ period_shift('targets.as_of_date', var('demand_horizon')) }} <= observed.observed_until)
{%- endset %}
{#- The planned shelf price: the price set for the target period where raw.shelf_prices has
    one (a price rise or a price above list included), else the regular price less the
    promotion's discount; where a price is set for some of the period's days only, the
    mean over its days of the two (the set mean alone without a regular price). -#}
{%- set unset_price -%}
    {{ regular_price }} * (1 - coalesce(target_promotions.promo_discount_pct, 0))
{%- endset %}
{%- set target_price -%}
    coalesce(
        target_prices.shelf_price * target_prices.days_set_share
            + {{ unset_price }} * (1 - target_prices.days_set_share),
        target_prices.shelf_price,
        {{ unset_price }}
    )
{%- endset %}
{#- The planned price over the regular one (1 - the discount without a price set). -#}
{%- set target_price_vs_regular -%}
    {{ target_price }} / nullif({{ regular_price }}, 0)
{%- endset %}
{#- The target period's planned price lift in log units at the product's price elasticity
    (below); with the aliases replaced, the same for another period's prices and promotions. -#}
{%- set promo_log_lift -%}
    coalesce(elasticities.price_elasticity, 0) * ln(coalesce(
        {{ target_price_vs_regular }}, 1 - coalesce(target_promotions.promo_discount_pct, 0)
    ))
{%- endset %}

with

history as (
    select * from {{ ref('demand_history') }}
),

sales as (
    select * from {{ ref('demand_sales') }}
),

stock_outs as (
    select * from {{ ref('demand_stock_outs') }}
),

products as (
    select * from {{ ref('stg_raw__products') }}
),

stores as (
    select * from {{ ref('stg_raw__stores') }}
),

target_promotions as (
    select * from {{ ref('demand_promotions') }}
),

target_prices as (
    select * from {{ ref('demand_shelf_prices') }}
),

elasticities as (
    select * from {{ ref('demand_price_elasticities') }}
),

events as (
    select * from {{ ref('demand_events') }}
),

overrides as (
    select * from {{ ref('stg_raw__overrides') }}
    where override_kind = 'demand'
),

spine as (
    select * from {{ ref('as_of_dates') }}
),

observed as (
    select max(data_observed_until) as observed_until
    from spine
),

rows_to_build as (
    select history.*
    from history
    {% if is_incremental() -%}
    where history.as_of_date in (
        {{ as_of_dates_to_build(
            [var('demand_horizon')],
            "select distinct as_of_date from " ~ ref('demand_history'),
            window_end=period_shift('built.as_of_date', 'horizon.days')
        ) }}
    )
    -- An overridden period (or a withdrawn override) changes labels already built: the
    -- as-of dates whose horizons reach it are built again.
    or history.as_of_date in (
        select {{ period_shift('overrides.period_start', '1 - horizon') }}
        from overrides
        cross join generate_series(1, {{ var('demand_horizon') }}) as horizon
    )
    -- What the rows were built with and has changed since, read in one pass over the
    -- table: the as-of dates whose targets differ are built again.
    -- Stock counts: a count of an empty shelf loaded late (counts loaded a week at a time)
    -- leaves the label standing, a count corrected back to a stocked shelf leaves it
    -- withheld, so a label follows the counts whenever they come.
    -- The calendar: events are known ahead and loaded whenever, and a period named
    -- otherwise is built again, history included, so that the model learns each event
    -- from its past days.
    or history.as_of_date in (
        select built.as_of_date
        from {{ this }} as built
        left join stock_outs
            on stock_outs.product_id = built.product_id
            and stock_outs.store_id = built.store_id
            and stock_outs.period_start = built.target_date
        left join events as target_events
            on target_events.store_id = built.store_id
            and target_events.period_start = built.target_date
        left join events as next_events
            on next_events.store_id = built.store_id
            and next_events.period_start = {{ period_shift('built.target_date', 1) }}
        where built.target_days_out_of_stock is distinct from stock_outs.days_out_of_stock
            or built.target_event is distinct from target_events.period_event
            or built.next_period_event is distinct from next_events.period_event
    )
    -- An as-of date whose last target period is not yet observed (the scoring date and the
    -- few before it) is built again on every run: the promotions and prices planned for
    -- its targets may have changed since, with no new sale to close a label window (a
    -- price plan loaded again the same day). Not a date scored before: its forecasts are
    -- written and its backtest reads only its labels, which it gets all at once when its
    -- horizon has been observed (`units` below), the one run that builds it again. A
    -- daily job at day grain keeps a horizon's worth of such dates, and rebuilt them all
    -- on every run.
    or (
        {{ period_shift('history.as_of_date', var('demand_horizon')) }} > (select observed_until from observed)
        and history.as_of_date in (select as_of_date from spine where is_training_date or is_scoring_date)
    )
    {%- endif %}
),

targets as materialized (
    -- Horizon h forecasts the period starting (h - 1) periods after the as-of date.
    -- Materialised, so that target_date is a column the joins below can merge or hash
    -- on; inlined, the planner joined on product and store only and filtered on the
    -- computed date, comparing every target of a series with every promotion period. The
    -- period before the target one likewise, for its planned prices and promotions.
    select
        rows_to_build.*,
        horizon,
        {{ period_shift('rows_to_build.as_of_date', 'horizon - 1') }} as target_date,
        {{ period_shift('rows_to_build.as_of_date', 'horizon - 2') }} as previous_target_date
    from rows_to_build
    cross join generate_series(1, {{ var('demand_horizon') }}) as horizon
),

final as (
    select
        targets.product_id,
        targets.store_id,
        targets.as_of_date,
        targets.horizon,
        targets.target_date,
        (targets.target_date - targets.as_of_date) as target_offset_days,
        -- A time index in calendar quarters: trees split it into eras, so that what they
        -- learn of a series' level comes from its latest quarters more than from its whole
        -- history, and a growing or declining series is not pulled back to where it used to
        -- sell. Quarters, not periods: a period's index would let the trees learn single
        -- weeks' shocks (a chain-wide promotion) that never recur.
        ((date_part('year', targets.as_of_date) - 2000) * 4 + date_part('quarter', targets.as_of_date) - 1)::integer
            as as_of_quarter_index,
        products.category,
        products.platform,
        products.is_own_brand,
        stores.store_format,
        stores.store_region,
        {%- if period == 1 %}
        date_part('isodow', targets.target_date)::integer as target_day_of_week,
        ((date_trunc('month', targets.target_date) + interval '1 month')::date - targets.target_date - 1)
            as target_days_to_month_end,
        {%- endif %}
        {%- for harmonic in range(1, year_harmonics + 1) %}
        sin(2 * pi() * {{ harmonic }} * {{ year_fraction }}) as target_year_sin_{{ harmonic }},
        cos(2 * pi() * {{ harmonic }} * {{ year_fraction }}) as target_year_cos_{{ harmonic }},
        {%- endfor %}
        products.list_price,
        coalesce(target_promotions.promo_discount_pct, 0) as promo_discount_pct,
        coalesce(target_promotions.promo_feature_ad, false) as promo_feature_ad,
        -- Any promotion planned, whatever it holds: a display, or a deal whose depth only
        -- the shelf price tells, is otherwise a period like any other.
        target_promotions.promo_discount_pct is not null as promo_planned,
        -- The retailer's events of the target period and of the one after (the shopping
        -- before a holiday): a holiday that moves in the year is known by its name.
        target_events.period_event as target_event,
        next_events.period_event as next_period_event,
        {{ target_price }} as target_price,
        {{ regular_price }} / products.list_price as regular_price_vs_list,
        {{ target_price_vs_regular }} as target_price_vs_regular,
        -- The planned price's expected change in log units at the product's price
        -- elasticity learnt from the periods before the as-of date: a response smooth in
        -- the price, where trees would split on the few depths the history holds.
        {{ promo_log_lift }} as promo_log_lift,
        -- The same for the period before the target one: a deal there brought purchases
        -- forward (shoppers stock up on what keeps), and the target period sells less.
        {{ promo_log_lift | replace('target_prices.', 'previous_prices.') | replace('target_promotions.', 'previous_promotions.') }}
            as previous_period_log_lift,
        -- Against the mean planned price of the category's products in this store and period.
        {{ target_price }} / nullif(avg({{ target_price }}) over category_period, 0) as target_price_vs_category,
        -- The other products of the category in this store and period: share on promotion, mean discount.
        (count(target_promotions.promo_discount_pct) over category_period
            - (target_promotions.promo_discount_pct is not null)::integer)::double precision
            / nullif(count(*) over category_period - 1, 0) as category_promo_share,
        (coalesce(sum(target_promotions.promo_discount_pct) over category_period, 0)
            - coalesce(target_promotions.promo_discount_pct, 0))
            / nullif(count(*) over category_period - 1, 0) as category_discount_mean,
        {%- for lag in calendar['lags'] %}
        targets.units_lag_{{ lag }},
        {%- endfor %}
        {%- for window in calendar['windows'] %}
        targets.units_mean_{{ window }},
        targets.units_std_{{ window }},
        {%- endfor %}
        targets.zero_share_{{ calendar['intermittency'] }},
        targets.units_last_observed,
        {%- if period == 1 %}
        case date_part('isodow', targets.target_date)::integer
            {%- for weekday in range(1, 8) %}
            when {{ weekday }} then targets.units_mean_isodow_{{ weekday }}
            {%- endfor %}
        end as units_mean_same_weekday,
        {%- else %}
        targets.units_mean_{{ calendar['last_year'] }}_last_year,
        {%- endif %}
        {{ same_period_last_year }} as units_same_period_last_year,
        -- How far the target period a year back moved from the level before it, in log
        -- units: the prediction intervals widen in the weeks of the year that move (a
        -- back-to-school peak, a holiday), not a model feature.
        {%- if period == 1 %}
        null::double precision as last_year_log_change,
        {%- else %}
        ln(1 + greatest({{ same_period_last_year }}, 0))
            - ln(1 + greatest(targets.level_before_target_last_year[targets.horizon], 0)) as last_year_log_change,
        {%- endif %}
        -- Seasonal naive: the same period one season earlier, stepping back whole seasons
        -- until that period lies before the as-of date; when that period was not observed,
        -- the latest observed one (or when it was out of stock all of it, or before the
        -- series' first sale).
        coalesce(
            case when {{ seasonal_date }} >= targets.first_sale then
                {{ in_stock_units(sold | replace('sales.', 'seasonal.'), 'seasonal_stock_outs') }}
            end,
            targets.units_last_observed,
            0
        ) as units_seasonal_naive,
        -- A person's override of the period's units wins over the orders (and is marked).
        -- A period with a day out of stock sold less than was asked for: no label (nor a
        -- test row) rather than a low one. A date scored before has its labels all at once,
        -- when its whole horizon has been observed (rows_to_build builds it then), so that
        -- a build from scratch agrees with one that did not rebuild it in between.
        case when {{ labelled }} then
            {{ window_label('targets.target_date', '(' ~ after_target ~ ' - targets.target_date)', 'observed.observed_until',
                'coalesce(overridden.override_value::double precision, case when target_stock_outs.days_out_of_stock is null then '
                ~ sold ~ ' end)') }}
        end as units,
        overridden.override_value is not null
            and {{ after_target }} <= observed.observed_until
            and {{ labelled }} as label_overridden,
        -- The stock counts the label was built with: an incremental build compares them
        -- with today's (rows_to_build).
        target_stock_outs.days_out_of_stock as target_days_out_of_stock,
        observed.observed_until,
        targets.last_event_date
    from targets
    cross join observed
    left join spine on spine.as_of_date = targets.as_of_date
    inner join products on products.product_id = targets.product_id
    inner join stores on stores.store_id = targets.store_id
    left join target_promotions
        on target_promotions.product_id = targets.product_id
        and target_promotions.store_id = targets.store_id
        and target_promotions.period_start = targets.target_date
    left join target_prices
        on target_prices.product_id = targets.product_id
        and target_prices.store_id = targets.store_id
        and target_prices.period_start = targets.target_date
    left join target_promotions as previous_promotions
        on previous_promotions.product_id = targets.product_id
        and previous_promotions.store_id = targets.store_id
        and previous_promotions.period_start = targets.previous_target_date
    left join target_prices as previous_prices
        on previous_prices.product_id = targets.product_id
        and previous_prices.store_id = targets.store_id
        and previous_prices.period_start = targets.previous_target_date
    left join elasticities
        on elasticities.product_id = targets.product_id
        and elasticities.as_of_date = targets.as_of_date
    left join events as target_events
        on target_events.store_id = targets.store_id
        and target_events.period_start = targets.target_date
    left join events as next_events
        on next_events.store_id = targets.store_id
        and next_events.period_start = {{ after_target }}
    left join sales
        on sales.product_id = targets.product_id
        and sales.store_id = targets.store_id
        and sales.period_start = targets.target_date
    left join stock_outs as target_stock_outs
        on target_stock_outs.product_id = targets.product_id
        and target_stock_outs.store_id = targets.store_id
        and target_stock_outs.period_start = targets.target_date
    left join overrides as overridden
        on overridden.product_id = targets.product_id
        and overridden.store_id = targets.store_id
        and overridden.period_start = targets.target_date
        and not overridden.is_withdrawn
    left join sales as last_year
        on last_year.product_id = targets.product_id
        and last_year.store_id = targets.store_id
        and last_year.period_start = {{ year_before_target }}
    left join stock_outs as last_year_stock_outs
        on last_year_stock_outs.product_id = targets.product_id
        and last_year_stock_outs.store_id = targets.store_id
        and last_year_stock_outs.period_start = {{ year_before_target }}
    left join sales as seasonal
        on seasonal.product_id = targets.product_id
        and seasonal.store_id = targets.store_id
        and seasonal.period_start = {{ seasonal_date }}
    left join stock_outs as seasonal_stock_outs
        on seasonal_stock_outs.product_id = targets.product_id
        and seasonal_stock_outs.store_id = targets.store_id
        and seasonal_stock_outs.period_start = {{ seasonal_date }}
    window category_period as (partition by targets.store_id, products.category, targets.as_of_date, targets.horizon)
)

select * from final
