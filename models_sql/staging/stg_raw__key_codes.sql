with

source as (
    select * from {{ source('raw', 'key_codes') }}
),

final as (
    select
        key_column,
        key_value,
        code as key_code
    from source
)

select * from final
