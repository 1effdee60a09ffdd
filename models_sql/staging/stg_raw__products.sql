with

source as (
    select * from {{ source('raw', 'products') }}
),

final as (
    select
        product_id,
        title,
        brand,
        category,
        platform,
        is_own_brand,
        is_verified_sustainable,
        list_price::double precision as list_price,
        unit_cost::double precision as unit_cost,
        sustainability_score::double precision as sustainability_score,
        initial_stock,
        launched_at as launched_date
    from source
)

select * from final
