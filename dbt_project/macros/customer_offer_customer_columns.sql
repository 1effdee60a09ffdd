{% macro customer_offer_customer_columns() -%}
    {#- The customer_features columns carried into customer x offer rows: one list for
        the training and the scoring rows. -#}
    {{ return([
        'segment', 'tenure_days', 'recency_days', 'frequency_90d', 'frequency_365d',
        'monetary_365d', 'avg_basket_value', 'promo_line_share', 'category_entropy_365d',
        'online_order_share_365d', 'offers_seen_to_date', 'offers_redeemed_to_date',
        'offer_redemption_rate_to_date',
    ]) }}
{%- endmacro %}
