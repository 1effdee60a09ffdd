{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='product_id',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['product_id'], 'unique': true}],
        pre_hook=hnsw_filtered_search_settings(var('neighbours_k')),
    )
}}

with

products as (
    select * from {{ ref('stg_raw__products') }}
),

outcomes as (
    select * from {{ ref('item_outcomes') }}
),

overrides as (
    select * from {{ ref('stg_raw__overrides') }}
),

observed as (
    select max(data_observed_until) as observed_until from {{ ref('as_of_dates') }}
),

items as (
    -- One row per product, as of its launch date.
    select
        products.*,
        outcomes.embedding,
        outcomes.sold_through,
        outcomes.label_overridden,
        outcomes.sell_through_share,
        products.launched_date as as_of_date
    from products
    inner join outcomes on outcomes.product_id = products.product_id
    -- A product without a launch date is no item (it is forecast as demand all the same).
    where products.launched_date is not null
    {% if is_incremental() -%}
        and (
            products.launched_date in (
                {{ as_of_dates_to_build(
                    [var('sell_through_horizon_days')],
                    "select distinct launched_date as as_of_date from " ~ ref('stg_raw__products')
                ) }}
            )
            -- A new product, or one whose launch date was corrected, whatever its date.
            or {{ not_built_as_of('product_id', 'products.product_id', 'products.launched_date') }}
            -- A product built before the data reached its launch (a launch planned ahead)
            -- read its neighbours' outcomes up to that build only: it is built again until
            -- the data reaches its launch date, as a full build reads them up to the launch.
            or products.product_id in (
                select built.product_id
                from {{ this }} as built
                where built.observed_until < built.as_of_date
            )
            -- An overridden label (or a withdrawn override) changes a row already built: its
            -- launch date is built again.
            or products.launched_date in (
                select overridden.launched_date
                from products as overridden
                inner join overrides
                    on overrides.product_id = overridden.product_id and overrides.override_kind = 'sell_through'
            )
        )
    {%- endif %}
),

category_prices as (
    select
        category,
        percentile_cont(0.5) within group (order by list_price) as median_list_price
    from products
    group by category
),

neighbours as (
    -- The K most similar items (cosine, HNSW index) whose outcome was known before this
    -- item launched: a neighbour's result is only used when it could have been known.
    select
        items.product_id,
        count(nearest.product_id) as neighbour_count,
        avg(nearest.sold_through::int)::double precision as neighbour_sold_through_rate,
        avg(nearest.sell_through_share) as neighbour_sell_through_share,
        avg(nearest.similarity) as neighbour_similarity_mean,
        max(nearest.similarity) as neighbour_similarity_max,
        sum(nearest.similarity * nearest.sold_through::int) / nullif(sum(nearest.similarity), 0)
            as neighbour_sold_through_weighted,
        max(nearest.outcome_known_date) as last_event_date
    from items
    left join lateral (
        select
            outcomes.product_id,
            outcomes.sold_through,
            outcomes.sell_through_share,
            outcomes.outcome_known_date,
            1 - (outcomes.embedding <=> items.embedding) as similarity
        from outcomes
        where outcomes.sold_through is not null
            and outcomes.outcome_known_date < items.launched_date
        order by outcomes.embedding <=> items.embedding
        limit {{ var('neighbours_k') }}
    ) as nearest on true
    group by items.product_id
),

final as (
    select
        items.product_id,
        items.as_of_date,
        items.brand,
        items.category,
        items.platform,
        items.is_own_brand,
        items.is_verified_sustainable,
        ln(items.list_price) as log_list_price,
        ln(items.list_price / category_prices.median_list_price) as log_price_vs_category,
        items.sustainability_score,
        items.initial_stock,
        items.embedding,
        neighbours.neighbour_count::integer as neighbour_count,
        neighbours.neighbour_sold_through_rate,
        neighbours.neighbour_sold_through_weighted,
        neighbours.neighbour_sell_through_share,
        neighbours.neighbour_similarity_mean,
        neighbours.neighbour_similarity_max,
        items.sell_through_share,
        items.sold_through,
        items.label_overridden,
        observed.observed_until,
        neighbours.last_event_date
    from items
    cross join observed
    inner join category_prices on category_prices.category = items.category
    inner join neighbours on neighbours.product_id = items.product_id
)

select * from final
