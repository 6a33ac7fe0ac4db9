-- Check fact_integrity (error): per reporting unit (period empty), the fact rows
-- (fct_activity_counts, fct_income_effects, fct_projects) that BI could not join: a
-- pairing_id missing from dim_pairing, or a reporting unit missing from dim_region.
-- observed_value = failing_rows = such fact rows.

-- The fact rows are read from the facts' lineage (marts_lineage.<fact>__lineage, kept exact
-- by the facts' own hooks: one row per partition × pairing × month with its fact row count),
-- about 12 times fewer rows than the facts; an example names fact, pairing and period, which
-- the lineage holds.
-- depends_on: {{ ref('fct_activity_counts') }}, {{ ref('fct_income_effects') }}, {{ ref('fct_projects') }}

with

pairings as (

    select distinct pairing_id from {{ ref('dim_pairing') }}

),

regions as (

    select distinct region_code from {{ ref('dim_region') }}

),

fact_rows as (

    {%- for fact in ['fct_activity_counts', 'fct_income_effects', 'fct_projects'] %}
    select
        '{{ fact }}' as fact_table,
        reporting_unit_code,
        {{ unit_scoped_id('reporting_unit_code', 'pairing_code') }} as pairing_id,
        period_code,
        sum(fact_rows) as fact_row_count
    from {{ lineage_relation(fact) }}
    group by reporting_unit_code, pairing_code, period_code
    {%- if not loop.last %}

    union all
    {% endif %}
    {%- endfor %}

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
            order by (is_unknown_unit or is_unknown_pairing) desc, fact_table, period_code, pairing_id
        ) as orphan_rank

    from checked

),

-- the worst five fact rows of each unit, one example each (the rows of one fact, pairing
-- and period give the same example: a lineage row stands for as many as it counts)
orphan_rows as (

    select
        ranked.*,
        row_number() over (
            partition by ranked.reporting_unit_code
            order by ranked.orphan_rank, copies.copy
        ) as example_rank

    from ranked
    cross join lateral generate_series(1, least(ranked.fact_row_count, 5)::integer) as copies (copy)
    where (ranked.is_unknown_pairing or ranked.is_unknown_unit) and ranked.orphan_rank <= 5

),

examples as (

    select
        reporting_unit_code,
        jsonb_agg(
            jsonb_build_object(
                'fact', fact_table,
                'pairing_id', pairing_id,
                'period_code', period_code,
                'problem', case when is_unknown_unit then 'unknown_unit' else 'unknown_pairing' end
            )
            order by example_rank
        ) as examples

    from orphan_rows
    where example_rank <= 5
    group by reporting_unit_code

),

grouped as (

    select
        reporting_unit_code,
        sum(fact_row_count) as fact_row_count,
        coalesce(sum(fact_row_count) filter (where is_unknown_pairing or is_unknown_unit), 0) as orphan_count,
        coalesce(sum(fact_row_count) filter (where is_unknown_pairing), 0) as unknown_pairing_count,
        coalesce(sum(fact_row_count) filter (where is_unknown_unit), 0) as unknown_unit_count

    from checked
    group by reporting_unit_code

),

final as (

    select
        'fact_integrity'::text as check_name,
        'error'::text as severity,
        grouped.reporting_unit_code,
        null::text as period_code,
        case when grouped.orphan_count > 0 then 'fail' else 'pass' end::text as outcome,
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
        coalesce(examples.examples, '[]'::jsonb) as examples

    from grouped
    left join examples
        on grouped.reporting_unit_code = examples.reporting_unit_code

)

select * from final
