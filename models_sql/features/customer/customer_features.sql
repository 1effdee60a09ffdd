{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of_date',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['as_of_date']}, {'columns': ['customer_id', 'as_of_date'], 'unique': true}],
        post_hook="{{ delete_dates_off_spine() }}",
    )
}}

{%- set horizons = [var('purchase_horizon_days'), var('churn_horizon_days'), var('clv_horizon_days')] %}

with

spine as (
    {{ spine_dates() }}
),

customers as (
    select * from {{ ref('stg_raw__customers') }}
),

order_lines as (
    select * from {{ ref('customer_order_lines') }}
),

products as (
    select * from {{ ref('stg_raw__products') }}
),

impressions as (
    select * from {{ ref('stg_raw__impressions') }}
),

redemptions as (
    select * from {{ ref('stg_raw__redemptions') }}
),

as_of_dates as (
    select
        dates.as_of_date,
        observed.data_observed_until as observed_until
    from (
        {% if is_incremental() -%}
        {{ as_of_dates_to_build(horizons) }}
        {%- else -%}
        select as_of_date from spine
        {%- endif %}
    ) as dates
    cross join (select max(data_observed_until) as data_observed_until from spine) as observed
),

price_tiers as (
    -- Thirds of list price within each category: 1 = cheapest, 3 = dearest (none for a
    -- product without a list price: it would sort as the dearest).
    select
        product_id,
        category,
        ntile(3) over (partition by category order by list_price) as price_tier
    from products
    where list_price is not null
),

customer_lines as (
    select
        order_lines.*,
        price_tiers.price_tier
    from order_lines
    left join price_tiers on price_tiers.product_id = order_lines.product_id
),

customer_orders as (
    -- One row per order of an identified customer. An order of returns only is not a
    -- purchase: it counts for spend (its value is negative), not as an order.
    select
        customer_id,
        order_id,
        order_date,
        bool_or(not is_return) as is_purchase,
        bool_or(is_online) as is_online,
        sum(net_amount) as order_value,
        sum(quantity) filter (where not is_return) as order_units,
        count(*) filter (where not is_return) as order_lines,
        count(*) filter (where is_promo and not is_return) as promo_lines,
        sum(quantity) filter (where price_tier = 1 and not is_return) as low_tier_units,
        sum(quantity) filter (where price_tier = 3 and not is_return) as high_tier_units
    from customer_lines
    group by customer_id, order_id, order_date
),

purchase_days as (
    -- One row per customer per day with a purchase, and the gap since the one before.
    select
        customer_id,
        order_date,
        order_date - lag(order_date) over (partition by customer_id order by order_date) as gap_days
    from (select distinct customer_id, order_date from customer_orders where is_purchase) as days
),

orders_before_as_of as (
    -- Orders in the feature look-back before each as-of date. This sets the population:
    -- rfm, and so the table, has a row for customers with at least one such purchase only.
    select
        as_of_dates.as_of_date,
        customer_orders.*
    from as_of_dates
    inner join customer_orders
        on customer_orders.order_date < as_of_dates.as_of_date
        and customer_orders.order_date >= as_of_dates.as_of_date - {{ var('feature_lookback_days') }}
),

rfm as (
    select
        as_of_date,
        customer_id,
        max(order_date) filter (where is_purchase) as last_order_date,
        min(order_date) filter (where is_purchase) as first_order_date,
        max(order_date) as last_event_date,
        count(*) filter (where is_purchase and order_date >= as_of_date - 30) as frequency_30d,
        count(*) filter (where is_purchase and order_date >= as_of_date - 90) as frequency_90d,
        count(*) filter (where is_purchase and order_date >= as_of_date - 365) as frequency_365d,
        count(*) filter (where is_purchase) as frequency_lookback,
        coalesce(sum(order_value) filter (where order_date >= as_of_date - 30), 0) as monetary_30d,
        coalesce(sum(order_value) filter (where order_date >= as_of_date - 90), 0) as monetary_90d,
        coalesce(sum(order_value) filter (where order_date >= as_of_date - 180 and order_date < as_of_date - 90), 0) as monetary_prior_90d,
        coalesce(sum(order_value) filter (where order_date >= as_of_date - 365), 0) as monetary_365d,
        -- What a purchase was worth net of the returns in the look-back (at least 0: the
        -- returns of purchases made before it can outweigh those made within it).
        greatest(sum(order_value), 0) / count(*) filter (where is_purchase) as avg_basket_value,
        avg(order_units) filter (where is_purchase) as avg_basket_units,
        sum(promo_lines)::double precision / nullif(sum(order_lines), 0) as promo_line_share,
        sum(low_tier_units)::double precision / nullif(sum(order_units), 0) as low_price_tier_share,
        sum(high_tier_units)::double precision / nullif(sum(order_units), 0) as high_price_tier_share,
        avg(is_online::int) filter (where is_purchase and order_date >= as_of_date - 365) as online_order_share_365d
    from orders_before_as_of
    group by as_of_date, customer_id
    having bool_or(is_purchase)
),

outcomes as (
    -- Labels: orders in the longest label window starting on the as-of date. Aggregated
    -- apart from the features: two aggregates over a third of the rows, not twenty over all.
    select
        as_of_dates.as_of_date,
        customer_orders.customer_id,
        min(customer_orders.order_date) filter (where customer_orders.is_purchase) as next_order_date,
        -- Net of the window's returns, at least 0 (returns of earlier purchases can outweigh it).
        greatest(sum(customer_orders.order_value), 0) as spend_from_as_of
    from as_of_dates
    inner join customer_orders
        on customer_orders.order_date >= as_of_dates.as_of_date
        and customer_orders.order_date < as_of_dates.as_of_date + {{ horizons | max }}
    group by as_of_dates.as_of_date, customer_orders.customer_id
),

purchase_intervals as (
    select
        as_of_dates.as_of_date,
        purchase_days.customer_id,
        -- In double precision: on integers avg and stddev compute in numeric, far slower
        -- over every as-of date's rows (the columns are double in the table anyway).
        avg(purchase_days.gap_days::double precision) as interpurchase_days_mean,
        stddev_samp(purchase_days.gap_days::double precision) as interpurchase_days_std,
        max(purchase_days.order_date) as last_event_date
    from as_of_dates
    inner join purchase_days
        on purchase_days.order_date < as_of_dates.as_of_date
        and purchase_days.order_date >= as_of_dates.as_of_date - {{ var('feature_lookback_days') }}
    group by as_of_dates.as_of_date, purchase_days.customer_id
),

daily_category_spend as (
    -- Summed per customer, category and day before the expansion to every as-of date
    -- below: a third fewer rows than order lines to expand on the sample.
    select
        customer_id,
        category,
        order_date,
        sum(net_amount::double precision) as spend
    from customer_lines
    -- The mix of what a customer buys: returns left out (a category's share would go below 0).
    where not is_return
    group by customer_id, category, order_date
),

category_spend as (
    select
        as_of_dates.as_of_date,
        daily_category_spend.customer_id,
        daily_category_spend.category,
        sum(daily_category_spend.spend) as spend,
        max(daily_category_spend.order_date) as last_event_date
    from as_of_dates
    inner join daily_category_spend
        on daily_category_spend.order_date < as_of_dates.as_of_date
        and daily_category_spend.order_date >= as_of_dates.as_of_date - 365
    group by as_of_dates.as_of_date, daily_category_spend.customer_id, daily_category_spend.category
),

category_mix as (
    select
        as_of_date,
        customer_id,
        count(*) filter (where spend > 0) as categories_bought_365d,
        coalesce(-sum(share * ln(share)) filter (where share > 0), 0) as category_entropy_365d,
        max(last_event_date) as last_event_date
    from (
        select
            *,
            spend / nullif(sum(spend) over (partition by as_of_date, customer_id), 0) as share
        from category_spend
    ) as shares
    group by as_of_date, customer_id
),

offer_history as (
    select
        as_of_dates.as_of_date,
        impressions.customer_id,
        count(*) as offers_seen_to_date,
        count(redemptions.redemption_id) as offers_redeemed_to_date,
        greatest(max(impressions.shown_date), max(redemptions.redeemed_date)) as last_event_date
    from as_of_dates
    inner join impressions
        on impressions.shown_date < as_of_dates.as_of_date
    left join redemptions
        on redemptions.impression_id = impressions.impression_id
        and redemptions.redeemed_date < as_of_dates.as_of_date
    group by as_of_dates.as_of_date, impressions.customer_id
),

final as (
    select
        rfm.customer_id,
        rfm.as_of_date,
        customers.segment,
        customers.customer_region,
        (rfm.as_of_date - customers.signup_date) as tenure_days,
        (rfm.as_of_date - rfm.last_order_date) as recency_days,
        rfm.frequency_30d::integer as frequency_30d,
        rfm.frequency_90d::integer as frequency_90d,
        rfm.frequency_365d::integer as frequency_365d,
        rfm.frequency_lookback::integer as frequency_lookback,
        rfm.monetary_30d,
        rfm.monetary_90d,
        rfm.monetary_365d,
        -- Ratios and logs that mean the same for a young and an old customer, so that a
        -- model trained on the customers whose labels have matured carries over to older ones.
        (rfm.as_of_date - rfm.first_order_date) as customer_age_days,
        (rfm.frequency_lookback * 30.0 / greatest(rfm.as_of_date - rfm.first_order_date, 30))::double precision
            as orders_per_30_days,
        ((rfm.as_of_date - rfm.last_order_date)::double precision
            / greatest(rfm.as_of_date - rfm.first_order_date, 1)) as recency_vs_age,
        ((rfm.as_of_date - rfm.last_order_date)
            / nullif(purchase_intervals.interpurchase_days_mean, 0))::double precision as recency_vs_interpurchase,
        (purchase_intervals.interpurchase_days_std
            / nullif(purchase_intervals.interpurchase_days_mean, 0))::double precision as purchase_irregularity,
        ln(1 + (rfm.as_of_date - rfm.last_order_date))::double precision as log_recency_days,
        ln(1 + (rfm.as_of_date - rfm.first_order_date))::double precision as log_customer_age_days,
        rfm.avg_basket_value,
        rfm.avg_basket_units::double precision as avg_basket_units,
        purchase_intervals.interpurchase_days_mean::double precision as interpurchase_days_mean,
        purchase_intervals.interpurchase_days_std::double precision as interpurchase_days_std,
        rfm.promo_line_share,
        coalesce(category_mix.category_entropy_365d, 0)::double precision as category_entropy_365d,
        coalesce(category_mix.categories_bought_365d, 0)::integer as categories_bought_365d,
        rfm.low_price_tier_share,
        rfm.high_price_tier_share,
        coalesce(rfm.online_order_share_365d, 0)::double precision as online_order_share_365d,
        -- Spend trend in [-1, 1]: last 90 days against the 90 before them (each at least 0:
        -- net of returns, a window can be below it).
        coalesce(
            (greatest(rfm.monetary_90d, 0) - greatest(rfm.monetary_prior_90d, 0))
                / nullif(greatest(rfm.monetary_90d, 0) + greatest(rfm.monetary_prior_90d, 0), 0),
            0
        ) as spend_trend_90d,
        coalesce(offer_history.offers_seen_to_date, 0)::integer as offers_seen_to_date,
        coalesce(offer_history.offers_redeemed_to_date, 0)::integer as offers_redeemed_to_date,
        offer_history.offers_redeemed_to_date::double precision
            / nullif(offer_history.offers_seen_to_date, 0) as offer_redemption_rate_to_date,
        {{ window_label('rfm.as_of_date', var('purchase_horizon_days'), 'rfm.observed_until',
            'coalesce(outcomes.next_order_date < rfm.as_of_date + ' ~ var('purchase_horizon_days') ~ ', false)') }} as purchased_in_horizon,
        {{ window_label('rfm.as_of_date', var('churn_horizon_days'), 'rfm.observed_until',
            'not coalesce(outcomes.next_order_date < rfm.as_of_date + ' ~ var('churn_horizon_days') ~ ', false)') }} as churned_in_horizon,
        {{ window_label('rfm.as_of_date', var('clv_horizon_days'), 'rfm.observed_until', 'coalesce(outcomes.spend_from_as_of, 0)') }} as spend_in_horizon,
        rfm.observed_until,
        greatest(
            rfm.last_event_date,
            purchase_intervals.last_event_date,
            category_mix.last_event_date,
            offer_history.last_event_date
        ) as last_event_date
    from (
        select rfm.*, as_of_dates.observed_until
        from rfm
        inner join as_of_dates on as_of_dates.as_of_date = rfm.as_of_date
    ) as rfm
    inner join customers on customers.customer_id = rfm.customer_id
    left join outcomes
        on outcomes.as_of_date = rfm.as_of_date and outcomes.customer_id = rfm.customer_id
    left join purchase_intervals
        on purchase_intervals.as_of_date = rfm.as_of_date and purchase_intervals.customer_id = rfm.customer_id
    left join category_mix
        on category_mix.as_of_date = rfm.as_of_date and category_mix.customer_id = rfm.customer_id
    left join offer_history
        on offer_history.as_of_date = rfm.as_of_date and offer_history.customer_id = rfm.customer_id
)

select * from final
