-- One row per loaded submission × record kind it contained, with its place among the
-- versions of the same reporting unit × period × record kind. A later loaded submission
-- (larger submission_id) supersedes the earlier ones; superseded versions stay here, marked.

with

submissions as (

    select * from {{ ref('stg_audit__submission_files') }}
    where submission_status = 'loaded'

),

submission_kinds as (

    select
        submissions.submission_id,
        kinds.record_kind,
        submissions.reporting_unit_code,
        submissions.period_code,
        submissions.period_start,
        submissions.period_end,
        submissions.received_at

    from submissions
    cross join lateral unnest(string_to_array(submissions.record_kinds, ',')) as kinds (record_kind)

),

versioned as (

    select
        submission_id,
        record_kind,
        reporting_unit_code,
        period_code,
        period_start,
        period_end,
        received_at,
        row_number() over versions as version_number,
        lead(submission_id) over versions as superseded_by_submission_id,
        last_value(submission_id) over (
            versions rows between unbounded preceding and unbounded following
        ) as current_submission_id

    from submission_kinds
    window versions as (
        partition by reporting_unit_code, period_code, record_kind
        order by submission_id
    )

),

final as (

    select
        {{ surrogate_key(['submission_id', 'record_kind']) }} as submission_kind_id,
        submission_id,
        record_kind,
        reporting_unit_code,
        period_code,
        {{ period_grain('period_code') }} as period_grain,
        period_start,
        period_end,
        version_number,
        superseded_by_submission_id,
        current_submission_id,
        superseded_by_submission_id is null as is_current,
        received_at

    from versioned

)

select * from final
