with

source as (
    select * from {{ source('raw', 'inventory_snapshots') }}
),

final as (
    select
        product_id,
        store_id,
        on_hand,
        snapshot_date
    from source
)

select * from final
