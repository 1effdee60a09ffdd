with

scores as (
    select * from {{ ref('stg_scores__offer_redemptions') }}
),

offers as (
    select * from {{ ref('stg_raw__offers') }}
),

impressions as (
    select * from {{ ref('stg_raw__impressions') }}
),

redemptions as (
    select * from {{ ref('stg_raw__redemptions') }}
),

latest as (
    select max(as_of_date) as as_of_date from scores
),

already_redeemed as (
    select distinct impressions.customer_id, impressions.offer_id
    from redemptions
    inner join impressions on impressions.impression_id = redemptions.impression_id
),

ranked as (
    select
        scores.*,
        row_number() over (
            partition by scores.customer_id
            order by scores.redemption_probability desc, scores.offer_id
        ) as rank
    from scores
    inner join latest on latest.as_of_date = scores.as_of_date
    where not exists (
        select 1 from already_redeemed
        where already_redeemed.customer_id = scores.customer_id and already_redeemed.offer_id = scores.offer_id
    )
),

final as (
    select
        ranked.customer_id,
        {{ key_as_written('customer_id', 'ranked.customer_id') }} as customer_code,
        ranked.rank::integer as rank,
        ranked.offer_id,
        {{ key_as_written('offer_id', 'ranked.offer_id') }} as offer_code,
        offers.category as offer_category,
        offers.product_id as offer_product_id,
        offers.discount_depth,
        offers.end_date as offer_end_date,
        ranked.redemption_probability,
        ranked.redemption_probability * offers.margin_impact as expected_margin_cost,
        ranked.reasons,
        ranked.model_version,
        ranked.as_of_date
    from ranked
    inner join offers on offers.offer_id = ranked.offer_id
    where ranked.rank <= {{ var('recommendations_k') }}
)

select * from final
