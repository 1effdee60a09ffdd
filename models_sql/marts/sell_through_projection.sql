{{ config(pre_hook=hnsw_filtered_search_settings(var('similar_items_shown'))) }}

with

scores as (
    select * from {{ ref('stg_scores__sell_throughs') }}
),

products as (
    select * from {{ ref('stg_raw__products') }}
),

outcomes as (
    select * from {{ ref('item_outcomes') }}
),

latest as (
    select max(as_of_date) as as_of_date from scores
),

scored_items as (
    select scores.*, outcomes.embedding
    from scores
    inner join latest on latest.as_of_date = scores.as_of_date
    inner join outcomes on outcomes.product_id = scores.product_id
),

similar_items as (
    -- The most similar past items with a known outcome (HNSW index), as evidence for
    -- the projection that a merchandiser can check.
    select
        scored_items.product_id,
        jsonb_agg(
            jsonb_build_object(
                'product_id', nearest.product_id,
                'product_code', {{ key_as_written('product_id', 'nearest.product_id') }},
                'title', nearest.title,
                'similarity', round(nearest.similarity::numeric, 3),
                'sold_through', nearest.sold_through,
                'sell_through_share', round(nearest.sell_through_share::numeric, 3)
            )
            order by nearest.similarity desc
        ) as similar_past_items
    from scored_items
    cross join lateral (
        select
            outcomes.product_id,
            products.title,
            outcomes.sold_through,
            outcomes.sell_through_share,
            1 - (outcomes.embedding <=> scored_items.embedding) as similarity
        from outcomes
        inner join products on products.product_id = outcomes.product_id
        where outcomes.sold_through is not null
            and outcomes.product_id <> scored_items.product_id
        order by outcomes.embedding <=> scored_items.embedding
        limit {{ var('similar_items_shown') }}
    ) as nearest
    group by scored_items.product_id
),

final as (
    select
        scored_items.product_id,
        {{ key_as_written('product_id', 'scored_items.product_id') }} as product_code,
        products.title,
        products.category,
        products.launched_date,
        scored_items.sell_through_probability,
        case
            when scored_items.sell_through_probability < {{ var('sell_through_block_below') }} then 'block'
            else 'go'
        end as guardrail,
        coalesce(similar_items.similar_past_items, '[]'::jsonb) as similar_past_items,
        scored_items.reasons,
        scored_items.model_version,
        scored_items.as_of_date
    from scored_items
    inner join products on products.product_id = scored_items.product_id
    left join similar_items on similar_items.product_id = scored_items.product_id
)

select * from final
