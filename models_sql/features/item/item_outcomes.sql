{#- The HNSW index is left for Postgres to name: during dbt's table swap the previous
    table (about to be dropped) still holds any fixed name, and "if not exists" would
    then skip creating it on the new table. -#}
{{
    config(
        materialized='table',
        post_hook=[
            "create index on {{ this }} using hnsw (embedding vector_cosine_ops) where sold_through is not null",
            "analyze {{ this }}",
        ],
    )
}}

with

products as (
    select * from {{ ref('stg_raw__products') }}
),

embeddings as (
    select * from {{ ref('stg_raw__product_embeddings') }}
),

orders as (
    select * from {{ ref('stg_raw__orders') }}
),

order_items as (
    select * from {{ ref('stg_raw__order_items') }}
),

spine as (
    select * from {{ ref('as_of_dates') }}
),

overrides as (
    select * from {{ ref('stg_raw__overrides') }}
    where override_kind = 'sell_through' and not is_withdrawn
),

history as (
    select
        min(order_date) as first_order_date,
        max(data_observed_until) as observed_until
    from orders
    cross join spine
),

units_after_launch as (
    select
        products.product_id,
        -- Returns (negative lines) netted: a unit taken back is stock again.
        coalesce(sum(order_items.quantity), 0) as units_in_horizon
    from products
    left join order_items on order_items.product_id = products.product_id
    left join orders
        on orders.order_id = order_items.order_id
    where orders.order_date >= products.launched_date
        and orders.order_date < products.launched_date + {{ var('sell_through_horizon_days') }}
    group by products.product_id
),

final as (
    select
        products.product_id,
        products.category,
        embeddings.embedding,
        products.launched_date,
        -- Known only for items launched inside the order history whose window has ended,
        -- with an initial stock to sell through (none, or not known: no label).
        case
            when products.launched_date >= history.first_order_date
                and products.launched_date + {{ var('sell_through_horizon_days') }} <= history.observed_until
                then products.launched_date + {{ var('sell_through_horizon_days') }}
        end as outcome_known_date,
        {{ window_label('products.launched_date', var('sell_through_horizon_days'), 'history.observed_until',
            'case when products.launched_date >= history.first_order_date and products.initial_stock > 0
                then coalesce(units_after_launch.units_in_horizon, 0)::double precision / products.initial_stock end') }}
            as sell_through_share,
        -- A person's override wins over the orders (and is marked), once the window has
        -- closed like any label: before that it is a projection, shown by the marts.
        {{ window_label('products.launched_date', var('sell_through_horizon_days'), 'history.observed_until',
            'coalesce(overrides.override_value = 1, case when products.launched_date >= history.first_order_date
                and products.initial_stock > 0
                then coalesce(units_after_launch.units_in_horizon, 0) >= ' ~ var('sell_through_target_share') ~ ' * products.initial_stock end)') }}
            as sold_through,
        overrides.override_id is not null
            and products.launched_date + {{ var('sell_through_horizon_days') }} <= history.observed_until
            as label_overridden
    from products
    inner join embeddings on embeddings.product_id = products.product_id
    cross join history
    left join units_after_launch on units_after_launch.product_id = products.product_id
    left join overrides on overrides.product_id = products.product_id
)

select * from final
