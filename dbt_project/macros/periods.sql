{#- Period codes as the submission contract writes them: 2024-06 (month), 2024Q2 (quarter),
    and 2024 (year, for roll-ups). -#}

{% macro month_code(date_column) -%}
    to_char({{ date_column }}, 'YYYY-MM')
{%- endmacro %}

{% macro quarter_code(date_column) -%}
    to_char({{ date_column }}, 'YYYY"Q"Q')
{%- endmacro %}

{% macro year_code(date_column) -%}
    to_char({{ date_column }}, 'YYYY')
{%- endmacro %}

{#- 'month' | 'quarter' | 'year' from a period code; null when the code is none of them, and
    for a null code (a pairings-only registration has no period). -#}
{% macro period_grain(code_column) -%}
    case
        when {{ code_column }} ~ '^[0-9]{4}-[0-9]{2}$' then 'month'
        when {{ code_column }} ~ '^[0-9]{4}Q[1-4]$' then 'quarter'
        when {{ code_column }} ~ '^[0-9]{4}$' then 'year'
    end
{%- endmacro %}
