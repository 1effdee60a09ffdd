{% macro week_start_of(date_expression) -%}
    {#- The first day of the week holding a date, weeks starting on var week_start (ISO Monday by default). -#}
    {%- set weekdays = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] -%}
    {%- if var('week_start') not in weekdays -%}
        {{ exceptions.raise_compiler_error("var week_start must be a weekday name (" ~ weekdays | join(', ') ~ "), got '" ~ var('week_start') ~ "'") }}
    {%- endif -%}
    (({{ date_expression }})::date - ((date_part('isodow', ({{ date_expression }})::date)::integer - {{ weekdays.index(var('week_start')) + 1 }} + 7) % 7))
{%- endmacro %}
