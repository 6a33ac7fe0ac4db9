-- One row per loaded submission × record kind it contained, with its place among the
-- versions of the same reporting unit × period × record kind. Which version is current is
-- decided once, in the audit view audit.submission_versions (ingestion/schema.sql): the
-- last received wins, a re-run takes the place of the file it re-runs. A pairings-only file
-- (a registration) has no period: every such receipt is a version sequence of its own (never
-- superseded but by its own re-run), and its period columns and period_grain are null.

with

versions as (

    select * from {{ ref('stg_audit__submission_versions') }}

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
        is_current,
        received_at

    from versions

)

select * from final
