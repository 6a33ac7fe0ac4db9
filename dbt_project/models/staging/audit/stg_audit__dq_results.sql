-- audit.dq_results, renamed, with the as_of day and state of the run each result belongs to
-- (audit.dq_runs: one run per night, or more when re-run).

with

results as (

    select * from {{ source('audit', 'dq_results') }}

),

runs as (

    select * from {{ source('audit', 'dq_runs') }}

),

renamed as (

    select

        ----------  ids
        results.id as dq_result_id,
        results.run_id,
        results.reporting_unit_code,

        ---------- strings
        results.check_name,
        results.severity,
        results.period_code,
        results.outcome,
        results.detail_zh,
        results.detail_en,
        runs.status as run_status,
        runs.data_docs as run_data_docs,

        ---------- numerics
        results.observed_value,
        results.failing_rows,

        ---------- json
        results.examples,

        ---------- dates
        runs.as_of as as_of_date,

        ---------- timestamps
        results.checked_at,
        runs.started_at as run_started_at,
        runs.finished_at as run_finished_at

    from results
    inner join runs
        on results.run_id = runs.run_id

)

select * from renamed
