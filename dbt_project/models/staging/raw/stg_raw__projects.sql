with

source as (

    select * from {{ source('raw', 'projects') }}

),

renamed as (

    select

        ----------  ids
        submission_id,
        source_row as source_row_number,
        reporting_unit_code,
        project_code,
        {{ unit_scoped_id('reporting_unit_code', 'project_code') }} as project_id,
        pairing_code,
        {{ unit_scoped_id('reporting_unit_code', 'pairing_code') }} as pairing_id,
        category as project_category,
        status as project_status,

        ---------- strings
        source_sheet,
        period as period_code,
        project_name,
        array_to_string(approximate_fields, ',') as approximate_fields,

        ---------- numerics
        investment_yuan::numeric(18, 2) as investment_yuan,
        land_mu::numeric(16, 2) as land_mu,
        households_benefited::bigint as households_benefited,

        ---------- booleans
        is_approximate,

        ---------- dates
        start_date as project_start_date,

        ---------- timestamps
        loaded_at

    from source

)

select * from renamed
