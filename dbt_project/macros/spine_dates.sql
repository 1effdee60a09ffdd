{% macro spine_dates(table_name=none) -%}
    {#- A query of the as_of_dates rows a feature table keeps: the history's grid, the
        scoring date, and the dates scored before that a backtest on `table_name`
        (default: this model's table) has yet to read. -#}
    {%- set table_name = table_name or this.identifier %}
    select *
    from {{ ref('as_of_dates') }}
    where kept_for_tables is null or kept_for_tables @> jsonb_build_array('{{ table_name }}')
{%- endmacro %}
