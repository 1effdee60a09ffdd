with

source as (
    select * from {{ source('scores', 'customer') }}
),

final as (
    select
        customer_id,
        as_of_date,
        purchase_probability_30d,
        churn_probability_90d,
        clv_365d,
        purchase_model_version,
        churn_model_version,
        clv_model_version,
        run_id,
        scored_at
    from source
)

select * from final
