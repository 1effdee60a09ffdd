with

source as (
    select * from {{ source('ml', 'pipeline_runs') }}
),

final as (
    select
        run_id,
        step,
        as_of_date,
        status,
        started_at,
        finished_at,
        rows as rows_written,
        counters
    from source
)

select * from final
