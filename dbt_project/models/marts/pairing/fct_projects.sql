{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ refresh_partitions(['reporting_unit_code'], stale_unit_keys('projects')) }}",
        post_hook="{{ record_fact_lineage(['reporting_unit_code']) }}",
        indexes=[
            {'columns': ['reporting_unit_code']},
        ],
    )
}}

-- One row per project (reporting unit × project code): its latest reported state. "Latest"
-- is the report of the latest period; between current reports of the same period (a
-- quarter and a month starting the same day) the later-loaded one wins.

with

projects as (

    select * from {{ ref('int_projects_versioned') }}
    where
        is_current
        {%- if is_incremental() %}
            and {{ in_refresh_keys(['reporting_unit_code']) }}
            and {{ in_refresh_submissions('projects', ['reporting_unit_code']) }}
        {%- endif %}

),

pairing_versions as (

    select * from {{ ref('int_pairings_historised') }}

),

ranked as (

    select
        projects.*,
        row_number() over (
            partition by projects.reporting_unit_code, projects.project_code
            order by projects.period_start desc, projects.submission_id desc
        ) as recency_rank,
        count(*) over (partition by projects.reporting_unit_code, projects.project_code) as report_count,
        first_value(projects.period_code) over (
            partition by projects.reporting_unit_code, projects.project_code
            order by projects.period_start, projects.submission_id
        ) as first_period_code

    from projects

),

latest as (

    select * from ranked
    where recency_rank = 1

),

attributed as (

    select
        latest.*,
        pairing_versions.urban_unit_code,
        pairing_versions.rural_unit_code,
        pairing_versions.source_submission_id as pairing_submission_id

    from latest
    left join pairing_versions
        on
            latest.reporting_unit_code = pairing_versions.reporting_unit_code
            and latest.pairing_code = pairing_versions.pairing_code
            and latest.period_start >= pairing_versions.effective_from
            and latest.period_start < pairing_versions.effective_to

),

final as (

    select
        ----------  ids
        project_id,
        reporting_unit_code,
        project_code,
        pairing_code,
        pairing_id,
        urban_unit_code,
        rural_unit_code,
        project_category,
        project_status,

        ---------- strings
        project_name,

        ---------- measures
        investment_yuan,
        land_mu,
        households_benefited,

        ---------- flags
        is_approximate,

        ---------- dates
        project_start_date,

        ---------- reports
        period_code as latest_period_code,
        period_start as latest_period_start,
        first_period_code,
        report_count::integer as report_count,

        ---------- lineage
        submission_id as source_submission_id,
        pairing_submission_id

    from attributed

)

select * from final
