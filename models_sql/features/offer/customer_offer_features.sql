{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='impression_id',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['impression_id'], 'unique': true}, {'columns': ['as_of_date']}],
        post_hook=[
            "{{ delete_rows_moved_away('impression_id', ref('stg_raw__impressions'), 'shown_date') }}",
            "{{ delete_dates_before() }}",
        ],
    )
}}

with

impressions as (
    select * from {{ ref('stg_raw__impressions') }}
),

redemptions as (
    select * from {{ ref('stg_raw__redemptions') }}
),

spine as (
    select * from {{ ref('as_of_dates') }}
),

observed as (
    select max(data_observed_until) as observed_until from spine
),

pairs as (
    -- One training row per impression, as of the day it was shown.
    select
        impressions.impression_id,
        impressions.customer_id,
        impressions.offer_id,
        impressions.shown_date as as_of_date,
        {{ window_label('impressions.shown_date', var('redemption_horizon_days'), 'observed.observed_until',
            'coalesce(redemptions.redeemed_date < impressions.shown_date + ' ~ var('redemption_horizon_days') ~ ', false)') }}
            as redeemed_within_7d,
        observed.observed_until
    from impressions
    cross join observed
    left join redemptions on redemptions.impression_id = impressions.impression_id
    where impressions.shown_date < observed.observed_until
        -- The history the settings keep (var history_weeks), as for the customers' rows,
        -- whose features an impression reads from the latest as-of date before it.
        and impressions.shown_date >= (select min(as_of_date) from spine)
    {% if is_incremental() -%}
        and (
            impressions.shown_date in (
                {{ as_of_dates_to_build(
                    [var('redemption_horizon_days')],
                    "select distinct shown_date as as_of_date from " ~ ref('stg_raw__impressions')
                ) }}
            )
            -- A new impression, or one whose time was corrected, whatever its date.
            or {{ not_built_as_of('impression_id', 'impressions.impression_id', 'impressions.shown_date') }}
        )
    {%- endif %}
),

feature_rows as (
    {{ customer_offer_feature_rows('pairs') }}
),

final as (
    select * from feature_rows
)

select * from final
