{{ config(indexes=[{'columns': ['product_id', 'store_id', 'period_start'], 'unique': true}]) }}

with

snapshots as (
    select * from {{ ref('stg_raw__inventory_snapshots') }}
),

days_out as (
    -- A day that ended with nothing on hand (or a count run below zero): the shelf was
    -- empty for some or all of it, so what sold is less than was asked for. A day not
    -- counted is taken to be in stock.
    select
        product_id,
        store_id,
        {{ period_start('snapshot_date') }} as period_start
    from snapshots
    where on_hand <= 0
),

final as (
    select
        product_id,
        store_id,
        period_start,
        count(*)::integer as days_out_of_stock,
        ({{ period_shift('period_start', 1) }} - period_start)::integer as days_in_period
    from days_out
    group by product_id, store_id, period_start
)

select * from final
