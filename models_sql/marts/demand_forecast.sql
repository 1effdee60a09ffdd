with

forecasts as (
    select * from {{ ref('stg_scores__demand_forecasts') }}
),

products as (
    select * from {{ ref('stg_raw__products') }}
),

stores as (
    select * from {{ ref('stg_raw__stores') }}
),

latest as (
    select max(as_of_date) as as_of_date from forecasts
),

final as (
    select
        forecasts.product_id,
        forecasts.store_id,
        forecasts.target_date,
        forecasts.horizon,
        products.title as product_title,
        products.category,
        stores.store_name,
        forecasts.forecast_units,
        forecasts.lower_80,
        forecasts.upper_80,
        forecasts.lower_95,
        forecasts.upper_95,
        forecasts.reasons,
        forecasts.model_version,
        forecasts.as_of_date
    from forecasts
    inner join latest on latest.as_of_date = forecasts.as_of_date
    inner join products on products.product_id = forecasts.product_id
    inner join stores on stores.store_id = forecasts.store_id
)

select * from final
