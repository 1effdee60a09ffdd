with

source as (
    select * from {{ source('raw', 'stores') }}
),

final as (
    select
        store_id,
        store_name,
        region as store_region,
        format as store_format,
        format = 'online' as is_online,
        opened_at as opened_date
    from source
)

select * from final
