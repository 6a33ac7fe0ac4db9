with

source as (

    select * from {{ source('audit', 'submission_files') }}

),

renamed as (

    select

        ----------  ids
        submission_id,
        duplicate_of as duplicate_of_submission_id,
        reprocess_of as reprocess_of_submission_id,
        reporting_unit_code,

        ---------- strings
        file_hash,
        original_name as original_file_name,
        file_format,
        encoding as file_encoding,
        period as period_code,
        status as submission_status,
        array_to_string(record_kinds, ',') as record_kinds,
        run_id,

        ---------- numerics
        size_bytes,
        rows_received,
        rows_loaded,
        rows_quarantined,

        ---------- dates
        period_start,
        period_end,

        ---------- timestamps
        received_at,
        processed_at

    from source

)

select * from renamed
