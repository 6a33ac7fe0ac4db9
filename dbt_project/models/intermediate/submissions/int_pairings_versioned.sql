-- Every pairings row ever loaded, with the version of its reporting unit × period × kind:
-- is_current is false once a later submission (a correction) replaced the file it came from.

with

pairings as (

    select * from {{ ref('stg_raw__pairings') }}

),

submission_kinds as (

    select * from {{ ref('int_submission_kinds_versioned') }}
    where record_kind = 'pairings'

),

joined as (

    select
        pairings.*,
        submission_kinds.period_grain,
        submission_kinds.period_start,
        submission_kinds.period_end,
        submission_kinds.version_number,
        submission_kinds.superseded_by_submission_id,
        submission_kinds.current_submission_id,
        submission_kinds.is_current

    from pairings
    inner join submission_kinds
        on pairings.submission_id = submission_kinds.submission_id

)

select * from joined
