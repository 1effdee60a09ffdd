{% test unique_combination_of_columns(model, columns) %}
{#- Fails on every combination of `columns` that appears more than once (a compound-key test in the spirit of
    dbt-utils, written here because dbt packages download from outside PyPI). -#}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
