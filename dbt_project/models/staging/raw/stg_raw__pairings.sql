with

source as (

    select * from {{ source('raw', 'pairings') }}

),

renamed as (

    select

        ----------  ids
        submission_id,
        source_row as source_row_number,
        reporting_unit_code,
        pairing_code,
        {{ unit_scoped_id('reporting_unit_code', 'pairing_code') }} as pairing_id,
        urban_unit_code,
        rural_unit_code,
        pairing_form,

        ---------- strings
        source_sheet,
        period as period_code,
        nullif(trim(urban_unit_name), '') as urban_unit_name,
        nullif(trim(rural_unit_name), '') as rural_unit_name,
        array_to_string(approximate_fields, ',') as approximate_fields,

        ---------- booleans
        agreement_signed as is_agreement_signed,
        is_approximate,

        ---------- dates
        paired_on,
        ended_on,

        ---------- timestamps
        loaded_at

    from source

)

select * from renamed
