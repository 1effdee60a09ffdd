with

forecasts as (
    select * from {{ ref('stg_scores__demand_forecasts') }}
),

features as (
    select * from {{ ref('demand_features') }}
),

products as (
    select * from {{ ref('stg_raw__products') }}
),

stores as (
    select * from {{ ref('stg_raw__stores') }}
),

overrides as (
    select * from {{ ref('stg_raw__overrides') }}
    where override_kind = 'demand' and not is_withdrawn
),

latest as (
    select max(as_of_date) as as_of_date from forecasts
),

overridden as (
    -- A person's projection replaces the model's units; the interval keeps the model's
    -- width around it (the lower bounds not below 0), so the inventory plan follows it.
    select
        forecasts.*,
        overrides.override_value,
        overrides.override_author,
        overrides.override_reason,
        coalesce(overrides.override_value - forecasts.forecast_units, 0) as shift
    from forecasts
    inner join latest on latest.as_of_date = forecasts.as_of_date
    left join overrides
        on overrides.product_id = forecasts.product_id
        and overrides.store_id = forecasts.store_id
        and overrides.period_start = forecasts.target_date
),

final as (
    select
        overridden.product_id,
        overridden.store_id,
        {{ key_as_written('product_id', 'overridden.product_id') }} as product_code,
        {{ key_as_written('store_id', 'overridden.store_id') }} as store_code,
        overridden.target_date,
        overridden.horizon,
        products.title as product_title,
        products.category,
        stores.store_name,
        stores.store_region,
        features.target_price as planned_price,
        features.promo_discount_pct,
        coalesce(overridden.override_value, overridden.forecast_units) as forecast_units,
        greatest(overridden.lower_80 + overridden.shift, 0) as lower_80,
        greatest(overridden.upper_80 + overridden.shift, 0) as upper_80,
        greatest(overridden.lower_95 + overridden.shift, 0) as lower_95,
        greatest(overridden.upper_95 + overridden.shift, 0) as upper_95,
        overridden.forecast_units as model_forecast_units,
        overridden.override_value is not null as is_overridden,
        overridden.override_author,
        overridden.override_reason,
        overridden.reasons,
        overridden.model_version,
        overridden.as_of_date
    from overridden
    inner join products on products.product_id = overridden.product_id
    inner join stores on stores.store_id = overridden.store_id
    left join features
        on features.product_id = overridden.product_id
        and features.store_id = overridden.store_id
        and features.as_of_date = overridden.as_of_date
        and features.horizon = overridden.horizon
)

select * from final
