-- Versions of each pairing over time, from the current (not superseded) pairing reports.
-- A report counts from its start key: the start of its period for a periodic report, and,
-- for a registration (a pairings-only file, no period), the month its pairing took effect
-- (paired_on). Reports of one pairing are ordered by that key, then by load order; each is
-- in effect from its key until the next report's key; the first report is in effect since
-- the beginning of time (a pairing is registered before its first activity, but a fact must
-- never lose its units). Facts look up the version in effect at their period's start: a
-- pairing that changes partners in June keeps its earlier rows attributed to the earlier
-- partners.
--
-- A table, analysed once built, indexed by pairing (one row per pairing version: ~15k for
-- the whole country): as a view, its window was computed again for every row that looked a
-- version up — a national month's income facts planned as a nested loop over it (14,705
-- rows × a sort of 14,705 versions: 114 s instead of 1.5 s).

{{
    config(
        materialized='table',
        post_hook="analyze {{ this }}",
        indexes=[{'columns': ['reporting_unit_code', 'pairing_code']}],
    )
}}

with

pairings as (

    select * from {{ ref('int_pairings_versioned') }}
    where is_current

),

keyed as (

    select
        *,
        -- a registration counts from the month its pairing took effect
        coalesce(period_start, date_trunc('month', paired_on)::date) as reported_from

    from pairings

),

ordered as (

    select
        pairing_id,
        reporting_unit_code,
        pairing_code,
        submission_id as source_submission_id,
        period_code as reported_period_code,
        period_start as reported_period_start,
        reported_from,
        urban_unit_code,
        urban_unit_name,
        rural_unit_code,
        rural_unit_name,
        pairing_form,
        paired_on,
        ended_on,
        is_agreement_signed,
        is_approximate,
        row_number() over reports as report_number,
        lead(reported_from) over reports as next_reported_from

    from keyed
    window reports as (
        partition by reporting_unit_code, pairing_code
        order by reported_from, submission_id
    )

),

final as (

    select
        {{ surrogate_key(['pairing_id', 'source_submission_id']) }} as pairing_version_key,
        pairing_id,
        reporting_unit_code,
        pairing_code,
        source_submission_id,
        reported_period_code,
        reported_period_start,
        reported_from,
        urban_unit_code,
        urban_unit_name,
        rural_unit_code,
        rural_unit_name,
        pairing_form,
        paired_on,
        ended_on,
        is_agreement_signed,
        is_approximate,
        report_number,
        case when report_number = 1 then '-infinity'::date else reported_from end as effective_from,
        coalesce(next_reported_from, 'infinity'::date) as effective_to,
        next_reported_from is null as is_latest

    from ordered

)

select * from final
