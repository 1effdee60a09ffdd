with

source as (
    select * from {{ source('raw', 'offers') }}
),

final as (
    select
        offer_id,
        product_id,
        category,
        is_own_brand,
        discount_depth::double precision as discount_depth,
        margin_impact::double precision as margin_impact,
        start_date,
        end_date
    from source
)

select * from final
