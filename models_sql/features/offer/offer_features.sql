{{ config(indexes=[{'columns': ['offer_id', 'as_of_date'], 'unique': true}, {'columns': ['as_of_date']}]) }}

{#- Offers live for days, not years: one row per offer per day it is active is small
    (offers x ~14), so this is a plain table rebuilt each run, exact on any day. -#}

with

offers as (
    select * from {{ ref('stg_raw__offers') }}
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

spine as (
    select * from {{ ref('as_of_dates') }}
),

offer_days as (
    -- Every day an offer can be redeemed, up to the latest scoring date.
    select
        offers.offer_id,
        day::date as as_of_date
    from offers
    cross join lateral generate_series(
        offers.start_date,
        least(offers.end_date, (select max(as_of_date) from spine)),
        interval '1 day'
    ) as day
),

impression_outcomes as (
    -- An impression's outcome is known once its redemption window has closed.
    select
        impressions.impression_id,
        impressions.offer_id,
        offers.category,
        impressions.shown_date,
        impressions.shown_date + {{ var('redemption_horizon_days') }} as outcome_known_date,
        coalesce(
            redemptions.redeemed_date < impressions.shown_date + {{ var('redemption_horizon_days') }}, false
        ) as is_redeemed,
        redemptions.redeemed_date
    from impressions
    inner join offers on offers.offer_id = impressions.offer_id
    left join redemptions on redemptions.impression_id = impressions.impression_id
),

calendar as (
    select day::date as day
    from generate_series(
        (select min(shown_date) from impressions),
        (select max(as_of_date) from spine),
        interval '1 day'
    ) as day
),

category_history as (
    -- Outcomes known by each day, per category and overall (cumulative counts).
    select
        categories.category,
        calendar.day,
        sum(count(impression_outcomes.impression_id))
            over (partition by categories.category order by calendar.day) as impressions_known,
        sum(count(impression_outcomes.impression_id) filter (where impression_outcomes.is_redeemed))
            over (partition by categories.category order by calendar.day) as redemptions_known
    from (select distinct category from offers) as categories
    cross join calendar
    left join impression_outcomes
        on impression_outcomes.category = categories.category
        and impression_outcomes.outcome_known_date = calendar.day
    group by categories.category, calendar.day
),

global_history as (
    select
        day,
        sum(impressions_known) as impressions_known,
        sum(redemptions_known) as redemptions_known
    from category_history
    group by day
),

offer_history as (
    select
        offer_days.offer_id,
        offer_days.as_of_date,
        count(impression_outcomes.impression_id) as impressions_known,
        count(impression_outcomes.impression_id) filter (where impression_outcomes.is_redeemed) as redemptions_known,
        max(greatest(impression_outcomes.shown_date, impression_outcomes.redeemed_date)) filter (
            where impression_outcomes.is_redeemed or impression_outcomes.redeemed_date is null
        ) as last_event_date
    from offer_days
    left join impression_outcomes
        on impression_outcomes.offer_id = offer_days.offer_id
        and impression_outcomes.outcome_known_date <= offer_days.as_of_date
    group by offer_days.offer_id, offer_days.as_of_date
),

global_rates as (
    select
        offer_history.offer_id,
        offer_history.as_of_date,
        offers.category,
        (coalesce(global_history.redemptions_known, 0) + 1.0)
            / (coalesce(global_history.impressions_known, 0) + 2.0) as global_rate
    from offer_history
    inner join offers on offers.offer_id = offer_history.offer_id
    left join global_history on global_history.day = offer_history.as_of_date
),

category_rates as (
    -- Empirical-Bayes shrinkage of the category's rate towards the overall rate.
    select
        global_rates.offer_id,
        global_rates.as_of_date,
        (coalesce(category_history.redemptions_known, 0) + {{ var('redemption_prior_strength') }} * global_rates.global_rate)
            / (coalesce(category_history.impressions_known, 0) + {{ var('redemption_prior_strength') }}) as category_rate
    from global_rates
    left join category_history
        on category_history.category = global_rates.category and category_history.day = global_rates.as_of_date
),

smoothed as (
    -- ... and of the offer's own rate towards its category's.
    select
        offer_history.offer_id,
        offer_history.as_of_date,
        offer_history.impressions_known,
        offer_history.last_event_date,
        category_rates.category_rate,
        (offer_history.redemptions_known + {{ var('redemption_prior_strength') }} * category_rates.category_rate)
            / (offer_history.impressions_known + {{ var('redemption_prior_strength') }}) as offer_rate
    from offer_history
    inner join category_rates
        on category_rates.offer_id = offer_history.offer_id and category_rates.as_of_date = offer_history.as_of_date
),

final as (
    select
        offers.offer_id,
        smoothed.as_of_date,
        offers.product_id,
        offers.category,
        offers.product_id is null as is_category_offer,
        offers.is_own_brand,
        offers.discount_depth,
        offers.margin_impact,
        products.list_price as product_list_price,
        (offers.end_date - smoothed.as_of_date) as days_until_expiry,
        (smoothed.as_of_date - offers.start_date) as days_since_start,
        smoothed.impressions_known::integer as offer_impressions_known,
        smoothed.category_rate::double precision as category_redemption_rate,
        smoothed.offer_rate::double precision as offer_redemption_rate,
        smoothed.last_event_date
    from smoothed
    inner join offers on offers.offer_id = smoothed.offer_id
    left join products on products.product_id = offers.product_id
)

select * from final
