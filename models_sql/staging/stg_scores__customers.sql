with

source as (
    select * from {{ source('scores', 'customer') }}
),

final as (
    select
        customer_id,
        as_of_date,
        purchase_probability,
        churn_probability,
        expected_spend,
        purchase_model_version,
        churn_model_version,
        clv_model_version,
        purchase_reasons,
        churn_reasons,
        clv_reasons,
        run_id,
        scored_at
    from source
)

select * from final
