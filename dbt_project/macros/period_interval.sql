{% macro period_interval() -%}
    {#- One demand period as a Postgres interval: a calendar month at month grain, else
        its days. -#}
    {%- set calendar = demand_calendar() -%}
    {%- if calendar['months'] -%}
        interval '1 month'
    {%- else -%}
        interval '{{ calendar['period_days'] }} days'
    {%- endif -%}
{%- endmacro %}
