with

source as (
    select * from {{ source('raw', 'customers') }}
),

final as (
    select
        customer_id,
        region as customer_region,
        segment,
        age_band,
        is_loyalty_member,
        email_opt_in,
        signup_date
    from source
)

select * from final
