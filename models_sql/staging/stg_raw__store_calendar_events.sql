with

source as (
    select * from {{ source('raw', 'store_calendar_events') }}
),

final as (
    -- 'Town fair' and 'town fair' on one day in one store load as two rows (the table's
    -- key is the name as written) and are one event here.
    select distinct
        store_id,
        event_date,
        {{ event_name('event') }} as event
    from source
)

select * from final
