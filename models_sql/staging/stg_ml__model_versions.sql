with

source as (
    select * from {{ source('ml', 'model_versions') }}
),

final as (
    select
        model_name,
        version as model_version,
        status,
        trained_as_of,
        estimator,
        -- The table its features are read from (schema.table), which its backtests read too.
        spec ->> 'relation' as feature_relation,
        selection_metric,
        metrics as test_metrics
    from source
)

select * from final
