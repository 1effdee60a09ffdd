with

source as (
    select * from {{ source('scores', 'offer_redemption') }}
),

final as (
    select
        customer_id,
        offer_id,
        as_of_date,
        probability as redemption_probability,
        model_name,
        model_version,
        reasons,
        run_id,
        scored_at
    from source
)

select * from final
