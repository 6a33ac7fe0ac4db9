-- Data quality over time, for dashboards: one row per night (the as_of day of the run; the
-- latest finished run of that day when it was re-run) × prefecture-level region × check, from
-- what the nightly runs stored in audit.dq_results. Whole-warehouse checks (no reporting
-- unit) count under region 'all'; a refused file that named no unit, or a unit the register
-- does not hold, under 'unknown'. Empty while no run has stored results.

with

results as (

    select * from {{ ref('stg_audit__dq_results') }}

),

regions as (

    select * from {{ ref('dim_region') }}

),

unit_regions as (

    select distinct on (regions.region_code)
        regions.region_code as reporting_unit_code,
        level_2_code as region_code,
        level_2_name as region_name

    from regions
    -- qualified: the output column region_code is the level-2 code
    order by regions.region_code, (regions.tree = 'civil') desc

),

runs as (

    select distinct
        run_id,
        as_of_date,
        run_status,
        run_started_at

    from results

),

nightly_runs as (

    select
        run_id,
        as_of_date

    from (
        select
            runs.*,
            row_number() over (
                partition by as_of_date
                order by (run_status = 'done') desc, run_started_at desc, run_id desc
            ) as run_rank
        from runs
    ) as ranked_runs
    where run_rank = 1

),

attributed as (

    select
        nightly_runs.as_of_date,
        nightly_runs.run_id,
        results.check_name,
        results.severity,
        results.outcome,
        results.failing_rows,
        case
            when results.reporting_unit_code is null and results.check_name <> 'refused_files' then 'all'
            else coalesce(unit_regions.region_code, 'unknown')
        end as region_code,
        case
            when results.reporting_unit_code is null and results.check_name <> 'refused_files' then '全部 / all'
            else coalesce(unit_regions.region_name, '未知 / unknown')
        end as region_name

    from results
    inner join nightly_runs
        on results.run_id = nightly_runs.run_id
    left join unit_regions
        on results.reporting_unit_code = unit_regions.reporting_unit_code

),

final as (

    select
        ----------  ids
        as_of_date,
        region_code,
        check_name,
        run_id,

        ---------- strings
        region_name,
        case when bool_or(severity = 'error') then 'error' else 'warning' end as severity,

        ---------- counts
        count(*)::integer as checks,
        count(*) filter (where outcome in ('pass', 'approximate'))::integer as passed,
        count(*) filter (where outcome = 'fail')::integer as failed,
        count(*) filter (where outcome = 'approximate')::integer as approximate,
        coalesce(sum(failing_rows), 0)::bigint as failing_rows,
        round(count(*) filter (where outcome in ('pass', 'approximate'))::numeric / count(*), 4)::numeric(5, 4)
            as share_passed

    from attributed
    group by as_of_date, region_code, check_name, run_id, region_name

)

select * from final
