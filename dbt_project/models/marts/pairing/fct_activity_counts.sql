{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ refresh_partitions(['reporting_unit_code', 'period_code'], stale_period_keys('activities')) }}",
        post_hook="{{ record_fact_lineage(['reporting_unit_code', 'period_code']) }}",
        indexes=[
            {'columns': ['reporting_unit_code', 'period_code']},
            {'columns': ['activity_month']},
        ],
    )
}}

with

activities as (

    select * from {{ ref('int_activities_versioned') }}
    where
        is_current
        {%- if is_incremental() %}
            and {{ in_refresh_keys(['reporting_unit_code', 'period_code']) }}
            and {{ in_refresh_submissions('activities', ['reporting_unit_code', 'period_code']) }}
        {%- endif %}

),

pairing_versions as (

    select * from {{ ref('int_pairings_historised') }}

),

counted as (

    select
        reporting_unit_code,
        pairing_code,
        pairing_id,
        period_code,
        period_start,
        activity_month,
        activity_type,
        submission_id as source_submission_id,
        count(*)::bigint as activity_count,
        sum(participants)::bigint as participants,
        sum(party_member_participants)::bigint as party_member_participants,
        coalesce(sum(problems_resolved), 0)::bigint as problems_resolved,
        coalesce(sum(suggestions_collected), 0)::bigint as suggestions_collected,
        bool_or(is_approximate) as is_approximate

    from activities
    group by
        reporting_unit_code,
        pairing_code,
        pairing_id,
        period_code,
        period_start,
        activity_month,
        activity_type,
        submission_id

),

attributed as (

    select
        counted.*,
        pairing_versions.urban_unit_code,
        pairing_versions.rural_unit_code,
        pairing_versions.source_submission_id as pairing_submission_id

    from counted
    left join pairing_versions
        on
            counted.reporting_unit_code = pairing_versions.reporting_unit_code
            and counted.pairing_code = pairing_versions.pairing_code
            and counted.period_start >= pairing_versions.effective_from
            and counted.period_start < pairing_versions.effective_to

),

final as (

    select
        ----------  ids
        {{ surrogate_key(['reporting_unit_code', 'pairing_code', 'period_code', 'activity_month', 'activity_type']) }}
            as activity_count_id,
        reporting_unit_code,
        pairing_code,
        pairing_id,
        urban_unit_code,
        rural_unit_code,
        activity_type,

        ---------- periods
        period_code,
        period_start,
        activity_month,
        {{ month_code('activity_month') }} as month_code,

        ---------- measures
        activity_count,
        participants,
        party_member_participants,
        problems_resolved,
        suggestions_collected,

        ---------- flags
        is_approximate,

        ---------- lineage
        source_submission_id,
        pairing_submission_id

    from attributed

)

select * from final
