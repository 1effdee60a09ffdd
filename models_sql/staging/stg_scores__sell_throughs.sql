with

source as (
    select * from {{ source('scores', 'sell_through') }}
),

final as (
    select
        product_id,
        as_of_date,
        probability as sell_through_probability,
        model_name,
        model_version,
        reasons,
        run_id,
        scored_at
    from source
)

select * from final
