{{ config(indexes=[{'columns': ['product_id', 'store_id', 'period_start'], 'unique': true}]) }}

with

orders as (
    select * from {{ ref('stg_raw__orders') }}
),

order_items as (
    select * from {{ ref('stg_raw__order_items') }}
),

final as (
    select
        order_items.product_id,
        orders.store_id,
        {{ period_start('orders.order_date') }} as period_start,
        -- A count, or an amount for goods sold by weight or length.
        sum(order_items.quantity)::double precision as units,
        -- Shelf price before discounts, per unit sold (above list price where the shop charged
        -- more); in a period of only 0-unit lines (on sale, none sold), the lines' price.
        coalesce(
            sum(order_items.gross_amount) / nullif(sum(order_items.quantity), 0),
            avg(order_items.unit_price)
        )::double precision as shelf_price,
        bool_or(order_items.is_promo) as had_promotion
    from orders
    inner join order_items on order_items.order_id = orders.order_id
    -- An order without a store is a customer's, not a store's demand; a return is not demand
    -- (its units were demanded when they sold).
    where orders.store_id is not null
        and not order_items.is_return
    group by 1, 2, 3
)

select * from final
