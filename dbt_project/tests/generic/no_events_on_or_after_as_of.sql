{% test no_events_on_or_after_as_of(model, column_name, as_of_column='as_of_date') %}
{#- Leakage guard: `column_name` holds the latest event date a feature row used.
    Features may only use events strictly before the row's as-of date, so any row
    where it is on or after the as-of date fails the build. -#}
select *
from {{ model }}
where {{ column_name }} >= {{ as_of_column }}
{% endtest %}
