{% macro validate_doc_columns(relation, column_dict, existing_column_names) -%}
    {#- dbt's own check of documented columns against the table (persist_docs), except
        that a column documented for the other demand grain (config meta demand_grain)
        is left out without a warning: demand_history and demand_features carry the lag
        and window columns of var demand_grain only, and every build at the other grain
        would otherwise warn about each of them. Any other missing column still warns. -#}
    {%- set this_grain = {} -%}
    {%- for name, column in column_dict.items() -%}
        {%- set meta = (column.get('config') or {}).get('meta') or column.get('meta') or {} -%}
        {%- if meta.get('demand_grain') in (none, var('demand_grain')) -%}
            {%- do this_grain.update({name: column}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(dbt.validate_doc_columns(relation, this_grain, existing_column_names)) }}
{%- endmacro %}
