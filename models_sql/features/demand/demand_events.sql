{{ config(indexes=[{'columns': ['store_id', 'period_start'], 'unique': true}]) }}

with

chain_events as (
    select * from {{ ref('stg_raw__calendar_events') }}
),

store_events as (
    select * from {{ ref('stg_raw__store_calendar_events') }}
),

stores as (
    select * from {{ ref('stg_raw__stores') }}
),

events_by_store as (
    -- An event of the chain is one of each of its stores, so that a forecast finds its
    -- period's events by an equality join on store and period (an index lookup), not by
    -- "store_id is null or ...", which plans as a join on the period alone.
    select
        stores.store_id,
        chain_events.event_date,
        chain_events.event
    from chain_events
    cross join stores

    union all

    select
        store_id,
        event_date,
        event
    from store_events
),

final as (
    -- One row per store and period (of var demand_grain) holding an event: a week or a
    -- month with two holds both, named together, and that pair is a category of its own.
    select
        store_id,
        {{ period_start('event_date') }} as period_start,
        string_agg(distinct event, ' & ' order by event) as period_event
    from events_by_store
    group by 1, 2
)

select * from final
