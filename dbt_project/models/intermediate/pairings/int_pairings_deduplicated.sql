-- The latest reported state of every pairing: the input of the SCD2 snapshot snp_pairings.
-- Only business attributes: lineage columns would make the snapshot record a new version
-- for a re-report that changed nothing.

with

versions as (

    select * from {{ ref('int_pairings_historised') }}
    where is_latest

),

final as (

    select
        pairing_id,
        reporting_unit_code,
        pairing_code,
        urban_unit_code,
        urban_unit_name,
        rural_unit_code,
        rural_unit_name,
        pairing_form,
        paired_on,
        ended_on,
        is_agreement_signed

    from versions

)

select * from final
