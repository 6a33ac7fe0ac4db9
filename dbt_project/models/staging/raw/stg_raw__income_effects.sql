with

source as (

    select * from {{ source('raw', 'income_effects') }}

),

renamed as (

    select

        ----------  ids
        submission_id,
        source_row as source_row_number,
        reporting_unit_code,
        pairing_code,
        {{ unit_scoped_id('reporting_unit_code', 'pairing_code') }} as pairing_id,

        ---------- strings
        source_sheet,
        period as period_code,
        array_to_string(approximate_fields, ',') as approximate_fields,

        ---------- numerics
        collective_income_increase_yuan::numeric(18, 2) as collective_income_increase_yuan,
        villager_income_increase_yuan::numeric(18, 2) as villager_income_increase_yuan,
        produce_sold_tonnes::numeric(16, 3) as produce_sold_tonnes,
        produce_sales_yuan::numeric(18, 2) as produce_sales_yuan,
        jobs_created::bigint as jobs_created,
        households_benefited::bigint as households_benefited,

        ---------- booleans
        is_approximate,

        ---------- timestamps
        loaded_at

    from source

)

select * from renamed
