{% macro validate_doc_columns(relation, column_dict, existing_column_names) -%}
    {#- dbt's own check of documented columns against the table (persist_docs), except
        that a column documented for other demand grains (config meta demand_grain: one
        grain or a list) is left out without a warning: demand_history and
        demand_features carry the lag and window columns of var demand_grain only, and
        every build at another grain would otherwise warn about each of them. Any other
        missing column still warns. -#}
    {%- set this_grain = {} -%}
    {%- for name, column in column_dict.items() -%}
        {%- set meta = (column.get('config') or {}).get('meta') or column.get('meta') or {} -%}
        {#- One grain, or a list of them. -#}
        {%- set grains = meta.get('demand_grain') -%}
        {%- if grains is none or var('demand_grain') in ([grains] if grains is string else grains) -%}
            {%- do this_grain.update({name: column}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(dbt.validate_doc_columns(relation, this_grain, existing_column_names)) }}
{%- endmacro %}
