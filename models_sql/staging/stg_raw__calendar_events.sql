with

source as (
    select * from {{ source('raw', 'calendar_events') }}
),

final as (
    select
        event_date,
        -- The name is the category the forecast learns from: 'Easter' and 'easter ' are one.
        lower(btrim(event)) as event
    from source
)

select * from final
