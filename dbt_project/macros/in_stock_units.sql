{% macro in_stock_units(units, stock_outs) -%}
    {#- A period's units as if it had been in stock every day: `units` scaled up to the
        period's days from the days it was in stock (`stock_outs`, a demand_stock_outs row
        or NULLs), NULL (unknown) when it was out of stock every day. -#}
    case
        when {{ stock_outs }}.days_out_of_stock is null then {{ units }}
        when {{ stock_outs }}.days_out_of_stock < {{ stock_outs }}.days_in_period
            then {{ units }} * {{ stock_outs }}.days_in_period
                / ({{ stock_outs }}.days_in_period - {{ stock_outs }}.days_out_of_stock)
    end
{%- endmacro %}
