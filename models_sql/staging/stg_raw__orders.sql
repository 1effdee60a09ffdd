with

source as (
    select * from {{ source('raw', 'orders') }}
),

final as (
    select
        order_id,
        customer_id,
        store_id,
        channel,
        channel in ('web', 'app') as is_online,
        ordered_at,
        {{ local_date('ordered_at') }} as order_date
    from source
)

select * from final
