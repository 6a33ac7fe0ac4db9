{#- Helpers of the nightly data-quality models (models/intermediate/quality, models/marts/quality).
    Vars are rendered through filters (date pattern, float, int): nothing from a --vars string
    reaches the SQL unchecked. -#}

{#- The day the checks judge: var quality_as_of ('YYYY-MM-DD'), or today in Asia/Shanghai. -#}
{% macro quality_as_of() -%}
    {%- set value = var('quality_as_of', '') -%}
    {%- set value = '' if value is none else (value | string | trim) -%}
    {%- if value == '' -%}
        (now() at time zone 'Asia/Shanghai')::date
    {%- elif modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value) -%}
        date '{{ value }}'
    {%- else -%}
        {{ exceptions.raise_compiler_error("var quality_as_of must be a date 'YYYY-MM-DD' or empty (today in Asia/Shanghai), got '" ~ value ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- A numeric var as an SQL literal (refuses anything that is not a number). -#}
{% macro quality_number(name) -%}
    {{ var(name) | float }}
{%- endmacro %}

{% macro quality_integer(name) -%}
    {{ var(name) | int }}
{%- endmacro %}

{#- Reporting deadline of a period: day `deadline_day` of the month `months_after` months after
    the period's last month, capped at that month's last day (day 31 in February = the 28th/29th). -#}
{% macro reporting_deadline(period_end, months_after, deadline_day) -%}
    least(
        (
            date_trunc('month', ({{ period_end }})::timestamp)
            + make_interval(months => {{ months_after }}, days => {{ deadline_day }} - 1)
        )::date,
        (
            date_trunc('month', ({{ period_end }})::timestamp)
            + make_interval(months => {{ months_after }} + 1)
            - interval '1 day'
        )::date
    )
{%- endmacro %}

{#- A date as 2025-02-05, a timestamptz as Asia/Shanghai wall time 2025-02-17 09:30:00 (+08:00). -#}
{% macro iso_date(column) -%}
    to_char({{ column }}, 'YYYY-MM-DD')
{%- endmacro %}

{% macro shanghai_time(column) -%}
    to_char(({{ column }}) at time zone 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS"+08:00"')
{%- endmacro %}

{#- Exact median of a numeric expression over the group (percentile_cont would go through
    double precision): the mean of the two middle values when the count is even, without
    trailing zeros (105, 10.5 — not 105.0, 10.5000000000000000). -#}
{% macro exact_median(expression) -%}
    trim_scale(
        (
            (percentile_disc(0.5) within group (order by {{ expression }}))
            + (percentile_disc(0.5) within group (order by {{ expression }} desc))
        ) * 0.5
    )
{%- endmacro %}

