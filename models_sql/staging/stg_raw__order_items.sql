with

source as (
    select * from {{ source('raw', 'order_items') }}
),

final as (
    select
        order_id,
        line_no,
        product_id,
        promo_flag as is_promo,
        quantity,
        -- A negative quantity is a return: units taken back, refunded at their price less
        -- the line's discount, so its amounts are negative.
        quantity < 0 as is_return,
        unit_price::double precision as unit_price,
        discount_amount::double precision as discount_amount,
        (quantity * unit_price)::double precision as gross_amount,
        (quantity * unit_price - sign(quantity) * discount_amount)::double precision as net_amount
    from source
)

select * from final
