{% macro not_built_as_of(key_column, key, as_of_date) -%}
    {#- In an incremental run of a table with one row per entity (unique_key the entity):
        true when the table holds no row for `key` as of `as_of_date`. That is a new
        entity, one loaded late with a date already built, or one whose date was
        corrected by an upsert; its row is built, and its row at the old date, if any,
        replaced. Rebuilding whole as-of dates alone would leave the old row in place. -#}
    not exists (
        select 1
        from {{ this }} as built
        where built.{{ key_column }} = {{ key }} and built.as_of_date = {{ as_of_date }}
    )
{%- endmacro %}
