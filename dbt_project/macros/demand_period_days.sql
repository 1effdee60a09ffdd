{% macro demand_period_days() -%}
    {#- Length in days of one demand period: 1 for var demand_grain 'day', 7 for 'week'. -#}
    {%- if var('demand_grain') == 'day' -%}1
    {%- elif var('demand_grain') == 'week' -%}7
    {%- else -%}{{ exceptions.raise_compiler_error("var demand_grain must be 'day' or 'week', got '" ~ var('demand_grain') ~ "'") }}
    {%- endif -%}
{%- endmacro %}
