with

forecasts as (
    select * from {{ ref('demand_forecast') }}
),

snapshots as (
    select * from {{ ref('stg_raw__inventory_snapshots') }}
),

latest_stock as (
    select distinct on (product_id, store_id) product_id, store_id, on_hand, snapshot_date
    from snapshots
    order by product_id, store_id, snapshot_date desc
),

lead_time as (
    -- Demand over the lead time and its uncertainty: each day's standard deviation is
    -- read off its 95 % interval, and days are treated as independent.
    select
        product_id,
        store_id,
        as_of_date,
        sum(forecast_units) filter (where horizon <= {{ var('lead_time_days') }}) as lead_time_demand,
        sqrt(sum(power((upper_95 - lower_95) / (2 * 1.96), 2)) filter (where horizon <= {{ var('lead_time_days') }}))
            as lead_time_demand_std,
        sum(forecast_units) filter (
            where horizon > {{ var('lead_time_days') }}
                and horizon <= {{ var('lead_time_days') }} + {{ var('review_period_days') }}
        ) as review_period_demand
    from forecasts
    group by product_id, store_id, as_of_date
),

policy as (
    select
        lead_time.*,
        {{ normal_quantile(var('service_level')) }} * lead_time.lead_time_demand_std as safety_stock
    from lead_time
),

final as (
    select
        policy.product_id,
        policy.store_id,
        coalesce(latest_stock.on_hand, 0) as on_hand,
        round(policy.lead_time_demand::numeric, 1)::double precision as lead_time_demand,
        round(policy.safety_stock::numeric, 1)::double precision as safety_stock,
        ceil(policy.lead_time_demand + policy.safety_stock)::integer as reorder_point,
        ceil(policy.lead_time_demand + policy.safety_stock)::integer as min_level,
        ceil(policy.lead_time_demand + policy.safety_stock + coalesce(policy.review_period_demand, 0))::integer as max_level,
        case
            when coalesce(latest_stock.on_hand, 0) < ceil(policy.lead_time_demand + policy.safety_stock)
                then greatest(
                    ceil(policy.lead_time_demand + policy.safety_stock + coalesce(policy.review_period_demand, 0))::integer
                    - coalesce(latest_stock.on_hand, 0),
                    0
                )
            else 0
        end as suggested_order_units,
        case
            when coalesce(latest_stock.on_hand, 0) < ceil(policy.lead_time_demand + policy.safety_stock)
                then format(
                    'reorder now: %s on hand, below the reorder point of %s (%s units expected over the %s-day lead time)',
                    coalesce(latest_stock.on_hand, 0),
                    ceil(policy.lead_time_demand + policy.safety_stock)::integer,
                    round(policy.lead_time_demand::numeric, 1),
                    {{ var('lead_time_days') }}
                )
        end as warning,
        latest_stock.snapshot_date as stock_counted_on,
        policy.as_of_date
    from policy
    left join latest_stock
        on latest_stock.product_id = policy.product_id and latest_stock.store_id = policy.store_id
)

select * from final
