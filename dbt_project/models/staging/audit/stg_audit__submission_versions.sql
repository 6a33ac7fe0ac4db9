with

source as (

    select * from {{ source('audit', 'submission_versions') }}

),

renamed as (

    select

        ----------  ids
        submission_id,
        receipt_id,
        supersedes_submission_id,
        superseded_by_submission_id,
        current_submission_id,
        reporting_unit_code,

        ---------- strings
        record_kind,
        period as period_code,
        original_name as original_file_name,

        ---------- numerics
        version_number,

        ---------- booleans
        is_current,

        ---------- dates
        period_start,
        period_end,

        ---------- timestamps
        received_at

    from source

)

select * from renamed
