{{ config(indexes=[{'columns': ['customer_id', 'order_date']}]) }}

with

orders as (
    select * from {{ ref('stg_raw__orders') }}
),

order_items as (
    select * from {{ ref('stg_raw__order_items') }}
),

products as (
    select * from {{ ref('stg_raw__products') }}
),

final as (
    select
        orders.order_id,
        order_items.line_no,
        orders.customer_id,
        order_items.product_id,
        products.category,
        orders.is_online,
        order_items.is_promo,
        order_items.is_return,
        order_items.quantity,
        order_items.gross_amount,
        order_items.discount_amount,
        order_items.net_amount,
        orders.order_date
    from orders
    inner join order_items on order_items.order_id = orders.order_id
    inner join products on products.product_id = order_items.product_id
    where orders.customer_id is not null
)

select * from final
