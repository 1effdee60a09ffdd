with

source as (
    select * from {{ source('raw', 'shelf_prices') }}
),

final as (
    select
        price_id,
        product_id,
        store_id,
        shelf_price::double precision as shelf_price,
        start_date,
        end_date
    from source
)

select * from final
