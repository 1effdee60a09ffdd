{% macro hnsw_filtered_search_settings(k) -%}
    {#- Transaction-local settings for a filtered k-nearest-neighbour search on an HNSW
        index. With pgvector >= 0.8 the scan continues until the filter has yielded k rows
        (strict order keeps exact distance order). Older pgvector returns at most
        hnsw.ef_search candidates before filtering, so we raise it well above k; rows may
        then still get fewer than k neighbours, which item_features records in
        neighbour_count. Sequential scans are off so that the index path, the one that
        matters at real catalogue sizes, is the one used and tested. -#}
    set local enable_seqscan = off;
    {% if pgvector_supports_iterative_scan() -%}
    set local hnsw.iterative_scan = strict_order;
    set local hnsw.ef_search = {{ [k * 4, 40] | max }};
    {%- else -%}
    set local hnsw.ef_search = {{ [k * 40, 400] | max }};
    {%- endif %}
{%- endmacro %}
