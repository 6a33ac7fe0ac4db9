-- Pairings with their history (SCD2, from the snapshot snp_pairings): one row per version.
-- Facts carry pairing_id; join on it with is_current for today's partners, or with
-- valid_from/valid_to for what the warehouse knew at a moment.

with

snapshot as (

    select * from {{ ref('snp_pairings') }}

),

forms as (

    select * from {{ ref('pairing_forms') }}

),

final as (

    select
        ----------  ids
        snapshot.dbt_scd_id as pairing_version_id,
        snapshot.pairing_id,
        snapshot.reporting_unit_code,
        snapshot.pairing_code,
        snapshot.urban_unit_code,
        snapshot.rural_unit_code,
        snapshot.pairing_form,

        ---------- strings
        snapshot.urban_unit_name,
        snapshot.rural_unit_name,
        forms.label_zh as pairing_form_label_zh,

        ---------- booleans
        snapshot.is_agreement_signed,
        snapshot.dbt_valid_to is null as is_current,

        ---------- dates
        snapshot.paired_on,
        snapshot.ended_on,

        ---------- timestamps
        snapshot.dbt_valid_from as valid_from,
        snapshot.dbt_valid_to as valid_to

    from snapshot
    left join forms
        on snapshot.pairing_form = forms.code

)

select * from final
