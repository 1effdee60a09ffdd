{% macro window_label(as_of_date, horizon_days, observed_until, value) -%}
    {#- A label over the window [as_of_date, as_of_date + horizon_days): `value` once the
        whole window has been observed (it ends on or before observed_until), else NULL.
        An unobserved outcome is unknown, never 0 or false. -#}
    case when {{ as_of_date }} + {{ horizon_days }} <= {{ observed_until }} then {{ value }} end
{%- endmacro %}
