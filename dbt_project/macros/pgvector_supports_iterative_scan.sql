{% macro pgvector_supports_iterative_scan() -%}
    {#- True when the server's pgvector (>= 0.8) can keep scanning an HNSW index until a
        WHERE filter has produced enough rows (hnsw.iterative_scan). -#}
    {%- if not execute -%}{{ return(false) }}{%- endif -%}
    {%- set result = run_query(
        "select coalesce((string_to_array(extversion, '.')::int[])[1:2] >= array[0, 8], false)
         from pg_extension where extname = 'vector'"
    ) -%}
    {{ return(result.rows | length > 0 and result.rows[0][0]) }}
{%- endmacro %}
