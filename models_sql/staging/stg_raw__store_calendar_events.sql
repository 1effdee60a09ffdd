with

source as (
    select * from {{ source('raw', 'store_calendar_events') }}
),

final as (
    select
        store_id,
        event_date,
        {{ event_name('event') }} as event
    from source
)

select * from final
