{% macro event_name(column) -%}
    {#- One event, one category: 'Easter' and 'easter ' are the same name. -#}
    lower(btrim({{ column }}))
{%- endmacro %}
