with

source as (
    select * from {{ source('raw', 'calendar_events') }}
),

final as (
    -- 'Easter' and 'easter ' on one day load as two rows (the table's key is the name as
    -- written) and are one event here.
    select distinct
        event_date,
        {{ event_name('event') }} as event
    from source
)

select * from final
