with

source as (
    select * from {{ source('raw', 'calendar_events') }}
),

final as (
    select
        event_date,
        {{ event_name('event') }} as event
    from source
)

select * from final
