-- Check fact_integrity (error): per reporting unit (period empty), the fact rows
-- (fct_activity_counts, fct_income_effects, fct_projects) that BI could not join: a
-- pairing_id missing from dim_pairing, or a reporting unit missing from dim_region.
-- observed_value = failing_rows = such fact rows.

with

activity_counts as (

    select * from {{ ref('fct_activity_counts') }}

),

income_effects as (

    select * from {{ ref('fct_income_effects') }}

),

projects as (

    select * from {{ ref('fct_projects') }}

),

pairings as (

    select distinct pairing_id from {{ ref('dim_pairing') }}

),

regions as (

    select distinct region_code from {{ ref('dim_region') }}

),

fact_rows as (

    select
        'fct_activity_counts' as fact_table,
        activity_count_id as fact_row_id,
        reporting_unit_code,
        pairing_id,
        period_code
    from activity_counts

    union all

    select
        'fct_income_effects' as fact_table,
        income_effect_id as fact_row_id,
        reporting_unit_code,
        pairing_id,
        period_code
    from income_effects

    union all

    select
        'fct_projects' as fact_table,
        project_id as fact_row_id,
        reporting_unit_code,
        pairing_id,
        latest_period_code as period_code
    from projects

),

checked as (

    select
        fact_rows.*,
        pairings.pairing_id is null as is_unknown_pairing,
        regions.region_code is null as is_unknown_unit

    from fact_rows
    left join pairings
        on fact_rows.pairing_id = pairings.pairing_id
    left join regions
        on fact_rows.reporting_unit_code = regions.region_code

),

ranked as (

    select
        *,
        row_number() over (
            partition by reporting_unit_code
            order by (is_unknown_unit or is_unknown_pairing) desc, fact_table, period_code, pairing_id, fact_row_id
        ) as orphan_rank

    from checked

),

grouped as (

    select
        reporting_unit_code,
        count(*) as fact_row_count,
        count(*) filter (where is_unknown_pairing or is_unknown_unit) as orphan_count,
        count(*) filter (where is_unknown_pairing) as unknown_pairing_count,
        count(*) filter (where is_unknown_unit) as unknown_unit_count,
        coalesce(
            jsonb_agg(
                jsonb_build_object(
                    'fact', fact_table,
                    'pairing_id', pairing_id,
                    'period_code', period_code,
                    'problem', case when is_unknown_unit then 'unknown_unit' else 'unknown_pairing' end
                )
                order by orphan_rank
            ) filter (where (is_unknown_pairing or is_unknown_unit) and orphan_rank <= 5),
            '[]'::jsonb
        ) as examples

    from ranked
    group by reporting_unit_code

),

final as (

    select
        'fact_integrity'::text as check_name,
        'error'::text as severity,
        reporting_unit_code,
        null::text as period_code,
        case when orphan_count > 0 then 'fail' else 'pass' end::text as outcome,
        orphan_count::numeric as observed_value,
        orphan_count::integer as failing_rows,
        case
            when orphan_count > 0 then format(
                '%s 行事实数据无法关联（结对未登记 %s 行，填报单位不在区划表 %s 行）',
                orphan_count, unknown_pairing_count, unknown_unit_count
            )
            else format('%s 行事实数据均可关联到结对与区划', fact_row_count)
        end as detail_zh,
        case
            when orphan_count > 0 then format(
                '%s fact rows do not join (pairing not in dim_pairing: %s, unit not in dim_region: %s)',
                orphan_count, unknown_pairing_count, unknown_unit_count
            )
            else format('all %s fact rows join dim_pairing and dim_region', fact_row_count)
        end as detail_en,
        examples

    from grouped

)

select * from final
