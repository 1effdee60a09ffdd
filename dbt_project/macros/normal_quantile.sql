{% macro normal_quantile(p) -%}
    {#- z such that P(Z <= z) = p for a standard normal Z, for any service level 0 < p < 1.
        Postgres has no inverse normal CDF: Acklam's rational approximation (relative
        error below 1.2e-9), worked out here where p is central, and in the tails (below
        0.02425 or above 1 - 0.02425) a constant SQL expression of sqrt and ln, which
        Postgres evaluates once per query. -#}
    {%- if not (p is number and 0 < p < 1) -%}
        {{ exceptions.raise_compiler_error("service level " ~ p ~ " is not a fraction between 0 and 1 (0.95 for 95 %)") }}
    {%- endif -%}
    {%- set a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690, -30.66479806614716, 2.506628277459239] -%}
    {%- set b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572, 1.0] -%}
    {%- set c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783] -%}
    {%- set d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416, 1.0] -%}
    {%- set tail = 0.02425 -%}
    {%- if tail <= p <= 1 - tail -%}
        {%- set q = p - 0.5 -%}
        {%- set r = q * q -%}
        {%- set ns = namespace(num=0.0, den=0.0) -%}
        {%- for coefficient in a %}{% set ns.num = ns.num * r + coefficient %}{% endfor -%}
        {%- for coefficient in b %}{% set ns.den = ns.den * r + coefficient %}{% endfor -%}
        {{ ns.num * q / ns.den }}
    {%- else -%}
        {#- Horner's rule over q = sqrt(-2 ln(tail probability)), the upper tail negated. -#}
        {%- set ns = namespace(num='0', den='0') -%}
        {%- for coefficient in c %}{% set ns.num = '(' ~ ns.num ~ ') * q + ' ~ coefficient %}{% endfor -%}
        {%- for coefficient in d %}{% set ns.den = '(' ~ ns.den ~ ') * q + ' ~ coefficient %}{% endfor -%}
        (select {{ '' if p < tail else '-' }}({{ ns.num }}) / ({{ ns.den }})
         from (select sqrt(-2 * ln({{ p if p < tail else 1 - p }}))::double precision as q) as tail)
    {%- endif -%}
{%- endmacro %}
