{% macro local_date(timestamp_column) -%}
    {#- The calendar date of a timestamptz in the retailer's time zone (var timezone). -#}
    ({{ timestamp_column }} at time zone '{{ var("timezone") }}')::date
{%- endmacro %}
