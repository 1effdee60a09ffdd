with

backtests as (
    select * from {{ ref('stg_ml__backtests') }}
),

versions as (
    select * from {{ ref('stg_ml__model_versions') }}
),

against_test as (
    -- The version's own figure on its test window (all horizons together), the yardstick
    -- a matured backtest is read against.
    select
        backtests.*,
        versions.status as version_status,
        versions.estimator,
        versions.selection_metric,
        case
            when backtests.horizon = 0 and jsonb_typeof(versions.test_metrics -> backtests.metric) = 'number'
                then (versions.test_metrics ->> backtests.metric)::double precision
        end as test_value
    from backtests
    inner join versions
        on backtests.model_name = versions.model_name
        and backtests.model_version = versions.model_version
),

final as (
    select
        model_name,
        model_version,
        as_of_date,
        horizon,
        metric,
        metric_value,
        test_value,
        metric_value - test_value as change_from_test,
        -- The trend: the same metric on the model's previous backtested date, whichever version scored it.
        lag(metric_value) over (
            partition by model_name, horizon, metric order by as_of_date, model_version
        ) as previous_value,
        labelled_rows,
        version_status = 'champion' as is_champion,
        metric = selection_metric as is_selection_metric,
        estimator,
        computed_at
    from against_test
)

select * from final
