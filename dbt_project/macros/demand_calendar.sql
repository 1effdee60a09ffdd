{% macro demand_calendar() -%}
    {#- What a demand period is at the grain set by var demand_grain, as a mapping:
        period_days  days in one period, the most a month can hold at month grain (1, 7, 31):
                     an upper bound for label windows counted in days;
        months       whether periods are calendar months (of 28 to 31 days), so that dates
                     step by months (macro period_shift), not by period_days;
        season       periods in one seasonal cycle (a week of days, a year of weeks or months);
        year_back    periods back to the same period a year earlier (364 days keep the weekday);
        lags         units_lag_<k> features: units k periods before the as-of date;
        windows      units_mean_<w> / units_std_<w> features over the last w periods;
        intermittency  the window of zero_share_<n>;
        last_year    at week and month grain, units_mean_<n>_last_year: the mean of the n
                     periods a year before the last n, for year-over-year change;
        history      dense periods kept per series and as-of date (covers every lag and
                     window, and last_year's periods).
        Feature names follow the numbers, so the model specs list them per grain. -#}
    {%- set grain = var('demand_grain') -%}
    {%- if grain == 'day' -%}
        {{ return({'period_days': 1, 'months': false, 'season': 7, 'year_back': 364, 'lags': [1, 7, 14, 28],
                   'windows': [7, 28], 'intermittency': 28, 'last_year': none, 'history': 56}) }}
    {%- elif grain == 'week' -%}
        {{ return({'period_days': 7, 'months': false, 'season': 52, 'year_back': 52, 'lags': [1, 2, 4, 13, 52],
                   'windows': [4, 13, 52], 'intermittency': 13, 'last_year': 13, 'history': 65}) }}
    {%- elif grain == 'month' -%}
        {{ return({'period_days': 31, 'months': true, 'season': 12, 'year_back': 12, 'lags': [1, 2, 3, 12],
                   'windows': [3, 12], 'intermittency': 6, 'last_year': 3, 'history': 15}) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("var demand_grain must be 'day', 'week' or 'month', got '" ~ grain ~ "'") }}
    {%- endif -%}
{%- endmacro %}
