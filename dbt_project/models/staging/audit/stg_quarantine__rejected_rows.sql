-- quarantine.rejected_rows, renamed: one row per problem found in a row that was not loaded
-- (a row with two problems has two). Lives beside the audit models: it is the ingestion's
-- record of what it refused, read by the data-quality checks only.

with

source as (

    select * from {{ source('quarantine', 'rejected_rows') }}

),

renamed as (

    select

        ----------  ids
        id as rejected_row_id,
        submission_id,

        ---------- strings
        file_hash,
        record_kind,
        source_sheet,
        column_name,
        value as cell_value,
        reason_code,
        reason_zh,
        reason_en,

        ---------- numerics
        source_row as source_row_number,

        ---------- json
        row_data,

        ---------- timestamps
        quarantined_at

    from source

)

select * from renamed
