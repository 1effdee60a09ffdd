with

source as (
    select * from {{ source('raw', 'promotions') }}
),

final as (
    select
        promotion_id,
        product_id,
        store_id,
        feature_ad as is_feature_ad,
        discount_pct::double precision as discount_pct,
        start_date,
        end_date
    from source
)

select * from final
