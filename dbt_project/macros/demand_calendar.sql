{% macro demand_calendar() -%}
    {#- What a demand period is at the grain set by var demand_grain, as a mapping:
        period_days  days in one period (1 or 7);
        season       periods in one seasonal cycle (a week of days, a year of weeks);
        lags         units_lag_<k> features: units k periods before the as-of date;
        windows      units_mean_<w> / units_std_<w> features over the last w periods;
        intermittency  the window of zero_share_<n>;
        history      dense periods kept per series and as-of date (covers every lag and window,
                     and at week grain the 13 weeks a year earlier for year-over-year features).
        Feature names follow the numbers, so the model specs list them per grain. -#}
    {%- set grain = var('demand_grain') -%}
    {%- if grain == 'day' -%}
        {{ return({'period_days': 1, 'season': 7, 'lags': [1, 7, 14, 28], 'windows': [7, 28],
                   'intermittency': 28, 'history': 56}) }}
    {%- elif grain == 'week' -%}
        {{ return({'period_days': 7, 'season': 52, 'lags': [1, 2, 4, 13, 52], 'windows': [4, 13, 52],
                   'intermittency': 13, 'history': 65}) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("var demand_grain must be 'day' or 'week', got '" ~ grain ~ "'") }}
    {%- endif -%}
{%- endmacro %}
