with

source as (
    select * from {{ source('ml', 'backtests') }}
),

final as (
    select
        model_name,
        model_version,
        as_of_date,
        horizon,
        metric,
        value as metric_value,
        n_rows as labelled_rows,
        run_id,
        computed_at
    from source
)

select * from final
