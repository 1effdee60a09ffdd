{% macro customer_offer_feature_rows(pairs) -%}
    {#- Feature rows for customer x offer pairs. `pairs` is a CTE name with columns
        customer_id, offer_id, as_of_date (plus anything else, passed through). One macro
        serves the training rows (impressions) and the scoring rows (candidates), so the
        two cannot drift apart. Interactions use the customer's purchases strictly
        before as_of_date; customer features come from the latest customer_features
        snapshot on or before as_of_date on the grid, or the scoring date's. -#}
    select
        pairs.*,
        snapshot.snapshot_date as customer_snapshot_date,
        {%- for column in customer_offer_customer_columns() %}
        customer_features.{{ column }},
        {%- endfor %}
        offer_features.category as offer_category,
        offer_features.is_category_offer,
        offer_features.is_own_brand as offer_is_own_brand,
        offer_features.discount_depth,
        offer_features.margin_impact,
        offer_features.product_list_price,
        offer_features.days_until_expiry,
        offer_features.days_since_start,
        offer_features.offer_impressions_known,
        offer_features.category_redemption_rate,
        offer_features.offer_redemption_rate,
        coalesce(history.bought_offer_product_before, false) as bought_offer_product_before,
        (pairs.as_of_date - history.last_category_purchase_date) as days_since_last_category_purchase,
        coalesce(history.category_spend_365d / nullif(history.total_spend_365d, 0), 0) as category_affinity_score,
        offer_features.discount_depth - coalesce(history.discount_rate_365d, 0) as discount_depth_vs_usual,
        coalesce(history.promo_line_share_365d, 0) * offer_features.discount_depth as price_sensitivity_match,
        greatest(history.last_event_date, customer_features.last_event_date, offer_features.last_event_date) as last_event_date
    from pairs
    inner join {{ ref('offer_features') }} as offer_features
        on offer_features.offer_id = pairs.offer_id and offer_features.as_of_date = pairs.as_of_date
    left join lateral (
        select max(as_of_date) as snapshot_date
        from {{ ref('as_of_dates') }}
        -- Not a date scored before: kept or not by the backtests, it would make an
        -- impression's customer columns depend on when it was built.
        where (is_training_date or is_scoring_date)
            and as_of_date <= pairs.as_of_date
    ) as snapshot on true
    left join {{ ref('customer_features') }} as customer_features
        on customer_features.customer_id = pairs.customer_id
        and customer_features.as_of_date = snapshot.snapshot_date
    left join lateral (
        select
            bool_or(
                case when offer_features.is_category_offer then lines.category = offer_features.category
                     else lines.product_id = offer_features.product_id end
            ) as bought_offer_product_before,
            max(lines.order_date) filter (where lines.category = offer_features.category) as last_category_purchase_date,
            sum(lines.net_amount) filter (
                where lines.category = offer_features.category and lines.order_date >= pairs.as_of_date - 365
            ) as category_spend_365d,
            sum(lines.net_amount) filter (where lines.order_date >= pairs.as_of_date - 365) as total_spend_365d,
            sum(lines.discount_amount) filter (where lines.order_date >= pairs.as_of_date - 365)
                / nullif(sum(lines.gross_amount) filter (where lines.order_date >= pairs.as_of_date - 365), 0)
                as discount_rate_365d,
            avg(lines.is_promo::int) filter (where lines.order_date >= pairs.as_of_date - 365)::double precision
                as promo_line_share_365d,
            max(lines.order_date) as last_event_date
        from {{ ref('customer_order_lines') }} as lines
        where lines.customer_id = pairs.customer_id
            and lines.order_date < pairs.as_of_date
            and lines.order_date >= pairs.as_of_date - {{ var('feature_lookback_days') }}
    ) as history on true
{%- endmacro %}
