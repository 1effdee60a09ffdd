with

source as (
    select * from {{ source('raw', 'product_embeddings') }}
),

final as (
    select
        product_id,
        embedding,
        embedding_model,
        created_at
    from source
)

select * from final
