{#- Only the scoring date's rows are kept: scoring reads no other, and an offer's backtest
    reads its later impressions, not these. Deleting the dates off the spine instead kept a
    date scored before that lies on the grid (a Monday of a daily job), which a build from
    scratch leaves out. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of_date',
        on_schema_change='append_new_columns',
        indexes=[{'columns': ['as_of_date', 'customer_id', 'offer_id'], 'unique': true}],
        post_hook="delete from {{ this }} where as_of_date not in (select as_of_date from {{ ref('as_of_dates') }} where is_scoring_date)",
    )
}}

with

spine as (
    select * from {{ ref('as_of_dates') }}
),

customer_lines as (
    select * from {{ ref('customer_order_lines') }}
),

offer_features as (
    select * from {{ ref('offer_features') }}
),

scoring_dates as (
    select as_of_date, data_observed_until as observed_until
    from spine
    where is_scoring_date
),

active_customers as (
    -- Customers who bought recently, with their top categories by spend over the last year.
    select
        scoring_dates.as_of_date,
        customer_lines.customer_id,
        customer_lines.category,
        row_number() over (
            partition by scoring_dates.as_of_date, customer_lines.customer_id
            order by sum(customer_lines.net_amount) desc, customer_lines.category
        ) as category_rank,
        max(max(customer_lines.order_date)) over (
            partition by scoring_dates.as_of_date, customer_lines.customer_id
        ) as last_order_date
    from scoring_dates
    inner join customer_lines
        on customer_lines.order_date < scoring_dates.as_of_date
        and customer_lines.order_date >= scoring_dates.as_of_date - 365
    group by scoring_dates.as_of_date, customer_lines.customer_id, customer_lines.category
),

pairs as (
    -- Active offers x active customers, narrowed to the customer's top categories, so the
    -- pool grows with customers (x a few offers each), not customers x offers.
    select
        active_customers.customer_id,
        offer_features.offer_id,
        active_customers.as_of_date,
        active_customers.category_rank as customer_category_rank,
        scoring_dates.observed_until
    from active_customers
    inner join scoring_dates on scoring_dates.as_of_date = active_customers.as_of_date
    inner join offer_features
        on offer_features.as_of_date = active_customers.as_of_date
        and offer_features.category = active_customers.category
    where active_customers.category_rank <= {{ var('candidate_categories_per_customer') }}
        and active_customers.last_order_date >= active_customers.as_of_date - {{ var('active_customer_days') }}
    {% if is_incremental() -%}
        and active_customers.as_of_date not in (select distinct as_of_date from {{ this }})
    {%- endif %}
),

feature_rows as (
    {{ customer_offer_feature_rows('pairs') }}
),

final as (
    select * from feature_rows
)

select * from final
