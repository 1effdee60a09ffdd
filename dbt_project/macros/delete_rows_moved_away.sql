{% macro delete_rows_moved_away(key_column, entities, date_column) -%}
    {#- Post-hook of a table with one row per entity (unique_key the entity): deletes each
        row whose entity no longer has the row's as-of date in `entities`, its date
        corrected to one the model does not build (an impression's time moved past the
        data observed). not_built_as_of replaces a row whose date moved to one that is
        built; this removes the one a full refresh would not build at all. -#}
    delete from {{ this }} as built
    where not exists (
        select 1
        from {{ entities }} as current_entities
        where current_entities.{{ key_column }} = built.{{ key_column }}
            and current_entities.{{ date_column }} = built.as_of_date
    )
{%- endmacro %}
