{{ config(indexes=[{'columns': ['period_start'], 'unique': true}]) }}

with

events as (
    select * from {{ ref('stg_raw__calendar_events') }}
),

final as (
    -- One row per period (of var demand_grain) holding an event: a week or a month with
    -- two holds both, named together, and that pair is a category of its own.
    select
        {{ period_start('event_date') }} as period_start,
        string_agg(distinct event, ' & ' order by event) as period_event
    from events
    group by 1
)

select * from final
