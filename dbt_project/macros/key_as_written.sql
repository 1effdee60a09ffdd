{% macro key_as_written(key_column, key) -%}
    {#- A key as the files write it: its code in raw.key_codes (setting coded_keys), else
        the number as text. A lookup on the code table's unique (key_column, key_value). -#}
    coalesce(
        (
            select key_codes.key_code
            from {{ ref('stg_raw__key_codes') }} as key_codes
            where key_codes.key_column = '{{ key_column }}' and key_codes.key_value = {{ key }}
        ),
        {{ key }}::text
    )
{%- endmacro %}
