with

scores as (
    select * from {{ ref('stg_scores__customers') }}
),

customers as (
    select * from {{ ref('stg_raw__customers') }}
),

latest as (
    select max(as_of_date) as as_of_date from scores
),

final as (
    select
        scores.customer_id,
        {{ key_as_written('customer_id', 'scores.customer_id') }} as customer_code,
        customers.segment,
        customers.customer_region,
        scores.purchase_probability,
        scores.churn_probability,
        scores.expected_spend,
        scores.purchase_reasons,
        scores.churn_reasons,
        scores.clv_reasons,
        scores.purchase_model_version,
        scores.churn_model_version,
        scores.clv_model_version,
        scores.as_of_date,
        scores.scored_at
    from scores
    inner join latest on latest.as_of_date = scores.as_of_date
    inner join customers on customers.customer_id = scores.customer_id
)

select * from final
