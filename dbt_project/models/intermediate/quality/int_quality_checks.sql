-- The nightly data-quality checks, one row per check × reporting unit × period (unit and
-- period empty for a whole-warehouse check): what the nightly run copies into
-- audit.dq_results. Each check is its own model (int_quality_<check>); this table stacks
-- them and adds `failure`, null unless the outcome is fail (the GX suite over this table
-- expects it to be null, so a failed check shows there as an unexpected value, named).

{{ config(materialized='table') }}

{%- set checks = [
    'reporting_completeness',
    'outliers',
    'total_row_reconciliation',
    'row_reconciliation',
    'refused_files',
    'quarantined_rows',
    'fact_integrity',
    'freshness',
    'quarantine_growth',
] %}

with

{% for check in checks %}
{{ check }} as (

    select * from {{ ref('int_quality_' ~ check) }}

),

{% endfor -%}

checks as (

    {%- for check in checks %}
    select
        check_name,
        severity,
        reporting_unit_code,
        period_code,
        outcome,
        observed_value,
        failing_rows,
        detail_zh,
        detail_en,
        examples
    from {{ check }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

final as (

    select
        check_name::text as check_name,
        severity::text as severity,
        reporting_unit_code::text as reporting_unit_code,
        period_code::text as period_code,
        outcome::text as outcome,
        observed_value::numeric as observed_value,
        failing_rows::integer as failing_rows,
        detail_zh::text as detail_zh,
        detail_en::text as detail_en,
        examples::jsonb as examples,
        case
            when outcome = 'fail'
                then coalesce(nullif(concat_ws(' ', reporting_unit_code, period_code), ''), check_name)
        end::text as failure

    from checks

)

select * from final
