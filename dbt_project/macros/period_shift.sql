{% macro period_shift(date_expression, periods) -%}
    {#- The start of the demand period `periods` periods after the one starting on a date
        (before it when negative): days at day and week grain, calendar months at month
        grain (a period start is a month's first day, so no month end is clipped). -#}
    {%- set calendar = demand_calendar() -%}
    {%- if calendar['months'] -%}
        ({{ date_expression }} + ({{ periods }}) * {{ period_interval() }})::date
    {%- else -%}
        ({{ date_expression }} + ({{ periods }}) * {{ calendar['period_days'] }})
    {%- endif -%}
{%- endmacro %}
