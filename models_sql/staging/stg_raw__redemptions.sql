with

source as (
    select * from {{ source('raw', 'redemptions') }}
),

final as (
    select
        redemption_id,
        impression_id,
        order_id,
        redeemed_at,
        {{ local_date('redeemed_at') }} as redeemed_date
    from source
)

select * from final
