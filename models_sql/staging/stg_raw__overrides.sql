{#- The latest override per key, demand overrides keyed by the demand period (at
    demand_grain) holding their day. A withdrawn one (NULL value) is kept, flagged: the
    data's own value applies again, and incremental tables still rebuild its rows. -#}
with

source as (
    select * from {{ source('raw', 'overrides') }}
),

keyed as (
    select
        override_id,
        kind as override_kind,
        product_id,
        store_id,
        case when period_start is not null then {{ period_start('period_start') }} end as period_start,
        value as override_value,
        author as override_author,
        reason as override_reason,
        recorded_at as override_recorded_at
    from source
),

latest as (
    select distinct on (override_kind, product_id, store_id, period_start) *
    from keyed
    order by override_kind, product_id, store_id, period_start, override_recorded_at desc, override_id desc
),

final as (
    select
        *,
        override_value is null as is_withdrawn
    from latest
)

select * from final
