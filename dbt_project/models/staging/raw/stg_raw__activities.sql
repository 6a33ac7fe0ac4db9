with

source as (

    select * from {{ source('raw', 'activities') }}

),

renamed as (

    select

        ----------  ids
        submission_id,
        source_row as source_row_number,
        reporting_unit_code,
        pairing_code,
        {{ unit_scoped_id('reporting_unit_code', 'pairing_code') }} as pairing_id,
        activity_type,

        ---------- strings
        source_sheet,
        period as period_code,
        title as activity_title,
        array_to_string(approximate_fields, ',') as approximate_fields,

        ---------- numerics
        participants::bigint as participants,
        party_member_participants::bigint as party_member_participants,
        problems_resolved::bigint as problems_resolved,
        suggestions_collected::bigint as suggestions_collected,

        ---------- booleans
        is_approximate,

        ---------- dates
        activity_date,
        date_trunc('month', activity_date)::date as activity_month,

        ---------- timestamps
        loaded_at

    from source

)

select * from renamed
