with

source as (
    select * from {{ source('raw', 'impressions') }}
),

final as (
    select
        impression_id,
        customer_id,
        offer_id,
        shown_at,
        {{ local_date('shown_at') }} as shown_date
    from source
)

select * from final
