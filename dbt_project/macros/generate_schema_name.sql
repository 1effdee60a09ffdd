{% macro generate_schema_name(custom_schema_name, node) -%}
    {#- Use the folder's schema as is (staging, features, marts), not "<target>_<schema>":
        DESIGN.md names these schemas and the scoring job reads them by name. -#}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
