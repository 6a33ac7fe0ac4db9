{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ refresh_partitions(['reporting_unit_code', 'period_code'], stale_period_keys('income_effects')) }}",
        post_hook="{{ record_fact_lineage(['reporting_unit_code', 'period_code']) }}",
        indexes=[
            {'columns': ['reporting_unit_code', 'period_code']},
            {'columns': ['period_start']},
        ],
    )
}}

with

income_effects as (

    select * from {{ ref('int_income_effects_versioned') }}
    where
        is_current
        {%- if is_incremental() %}
            and {{ in_refresh_keys(['reporting_unit_code', 'period_code']) }}
            and {{ in_refresh_submissions('income_effects', ['reporting_unit_code', 'period_code']) }}
        {%- endif %}

),

pairing_versions as (

    select * from {{ ref('int_pairings_historised') }}

),

attributed as (

    select
        income_effects.*,
        pairing_versions.urban_unit_code,
        pairing_versions.rural_unit_code,
        pairing_versions.source_submission_id as pairing_submission_id

    from income_effects
    left join pairing_versions
        on
            income_effects.reporting_unit_code = pairing_versions.reporting_unit_code
            and income_effects.pairing_code = pairing_versions.pairing_code
            and income_effects.period_start >= pairing_versions.effective_from
            and income_effects.period_start < pairing_versions.effective_to

),

final as (

    select
        ----------  ids
        {{ surrogate_key(['reporting_unit_code', 'pairing_code', 'period_code']) }} as income_effect_id,
        reporting_unit_code,
        pairing_code,
        pairing_id,
        urban_unit_code,
        rural_unit_code,

        ---------- periods
        period_code,
        period_grain,
        period_start,
        period_end,

        ---------- measures (null = not reported, never 0: nothing is coalesced)
        collective_income_increase_yuan,
        villager_income_increase_yuan,
        produce_sold_tonnes,
        produce_sales_yuan,
        jobs_created,
        households_benefited,

        ---------- flags
        is_approximate,

        ---------- lineage
        submission_id as source_submission_id,
        pairing_submission_id

    from attributed

)

select * from final
