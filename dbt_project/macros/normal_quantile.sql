{% macro normal_quantile(p) -%}
    {#- z such that P(Z <= z) = p for a standard normal Z, for the service levels planners
        use. Postgres has no inverse normal CDF, and a lookup keeps the number exact. -#}
    {%- set table = {0.8: 0.8416, 0.85: 1.0364, 0.9: 1.2816, 0.95: 1.6449, 0.975: 1.9600, 0.98: 2.0537, 0.99: 2.3263, 0.995: 2.5758} -%}
    {%- if p not in table -%}
        {{ exceptions.raise_compiler_error("service level " ~ p ~ " is not one of " ~ (table.keys() | list | sort | join(', '))) }}
    {%- endif -%}
    {{ table[p] }}
{%- endmacro %}
