with

source as (
    select * from {{ source('scores', 'demand_forecast') }}
),

final as (
    select
        product_id,
        store_id,
        as_of_date,
        horizon,
        target_date,
        units as forecast_units,
        lower_80,
        upper_80,
        lower_95,
        upper_95,
        model_name,
        model_version,
        reasons,
        run_id,
        scored_at
    from source
)

select * from final
