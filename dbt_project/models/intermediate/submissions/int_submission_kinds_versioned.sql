-- One row per loaded submission × record kind it contained, with its place among the
-- versions of the same reporting unit × period × record kind. Which version is current is
-- decided once, in the audit view audit.submission_versions (ingestion/schema.sql): the
-- last received wins, a re-run takes the place of the file it re-runs. A pairings-only file
-- (a registration) has no period: every such receipt is a version sequence of its own (never
-- superseded but by its own re-run), and its period columns and period_grain are null.
--
-- One grain wins: a unit that sends both monthly reports and a quarterly report of the same
-- record kind for the same months would be counted twice in every sum. The quarterly report
-- (季报) wins: the current quarterly submission of a unit and kind covers that unit's
-- monthly submissions of the kind for the quarter's months (covered_by_submission_id), which
-- then are not current, whichever arrived first. Pairings are versions of a pairing, not
-- figures: the rule does not apply to them. A correction of the quarterly report covers the
-- months the same way; the monthly rows stay here and in raw, as superseded versions do.
--
-- A table, analysed once built (one row per file × kind: ~190k for a national year): as a
-- view, the planner could not estimate the grain rule's range join (it guessed 1 row) and
-- joined every raw row of a kind to it in nested loops — every read of the versioned rows
-- (the pairings' history, its tests, the snapshot) took 12-35 s on a national quarter
-- instead of a fraction of a second.

{{
    config(
        materialized='table',
        post_hook="analyze {{ this }}",
        indexes=[{'columns': ['submission_id', 'record_kind'], 'unique': true}],
    )
}}

with

versions as (

    select * from {{ ref('stg_audit__submission_versions') }}

),

graded as (

    select
        *,
        {{ period_grain('period_code') }} as period_grain
    from versions

),

current_quarters as (

    select submission_id, record_kind, reporting_unit_code, period_start, period_end
    from graded
    where is_current and period_grain = 'quarter' and record_kind <> 'pairings'

),

covered as (

    select
        graded.submission_id,
        graded.record_kind,
        current_quarters.submission_id as covered_by_submission_id
    from graded
    inner join current_quarters
        on graded.reporting_unit_code = current_quarters.reporting_unit_code
        and graded.record_kind = current_quarters.record_kind
        and graded.period_start >= current_quarters.period_start
        and graded.period_end <= current_quarters.period_end
    where graded.period_grain = 'month'

),

final as (

    select
        {{ surrogate_key(['graded.submission_id', 'graded.record_kind']) }} as submission_kind_id,
        graded.submission_id,
        graded.record_kind,
        graded.reporting_unit_code,
        graded.period_code,
        graded.period_grain,
        graded.period_start,
        graded.period_end,
        graded.version_number,
        graded.superseded_by_submission_id,
        graded.current_submission_id,
        covered.covered_by_submission_id,
        graded.is_current as is_current_version,
        graded.is_current and covered.covered_by_submission_id is null as is_current,
        graded.received_at

    from graded
    left join covered
        on graded.submission_id = covered.submission_id
        and graded.record_kind = covered.record_kind

)

select * from final
