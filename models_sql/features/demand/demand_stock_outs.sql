{{ config(indexes=[{'columns': ['product_id', 'store_id', 'period_start'], 'unique': true}]) }}
{#- How raw.inventory_snapshots counts: a count for each day counted, or a stock system's log
    of changes, where a count holds until the next (var stock_counts). -#}
{%- set counts_on_change = var('stock_counts') == 'on_change' %}

with

snapshots as (
    select * from {{ ref('stg_raw__inventory_snapshots') }}
),

as_of_dates as (
    select * from {{ ref('as_of_dates') }}
),

{%- if counts_on_change %}

counts as (
    select
        *,
        lead(snapshot_date) over (
            partition by product_id, store_id order by snapshot_date
        ) as next_counted_on
    from snapshots
),

spells_out as (
    -- A log writes a row when the count changes: a count of nothing on hand (or below zero)
    -- stands until the next row (a delivery), the last one until the data ends.
    select
        counts.product_id,
        counts.store_id,
        counts.snapshot_date as first_day,
        coalesce(
            counts.next_counted_on - 1,
            greatest(counts.snapshot_date, (select max(data_observed_until) - 1 from as_of_dates))
        ) as last_day
    from counts
    where counts.on_hand <= 0
),

days_out as (
    select
        spells_out.product_id,
        spells_out.store_id,
        {{ period_start('out_day::date') }} as period_start
    from spells_out
    cross join lateral generate_series(spells_out.first_day, spells_out.last_day, interval '1 day') as out_day
),

{%- else %}

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

{%- endif %}

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
