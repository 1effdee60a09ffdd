{% macro period_start(date_expression) -%}
    {#- The first day of the demand period (var demand_grain) holding a date. -#}
    {%- set calendar = demand_calendar() -%}
    {%- if calendar['months'] -%}
        date_trunc('month', ({{ date_expression }})::date)::date
    {%- elif calendar['period_days'] == 7 -%}
        {{ week_start_of(date_expression) }}
    {%- else -%}
        ({{ date_expression }})::date
    {%- endif -%}
{%- endmacro %}
