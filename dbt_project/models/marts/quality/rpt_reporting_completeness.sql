-- Reporting completeness and timeliness (DHIS2-style reporting rates): one row per reporting
-- unit × period the schedule (seed reporting_schedule) expects up to the period containing
-- var quality_as_of, plus every unit × period with a loaded file that was not expected.
-- A period counts as received when a file for it loaded; the receipt time of a re-run
-- (pairstats reprocess) is that of the original receipt, when the district sent it. A
-- registration (a pairings-only file, no period) is no periodic report: it counts for none.
--
-- Who must report comes from the schedule's rows by `scope`: `unit` (the default) names one
-- unit; `under` names a region and means every county-level unit below it — level 3 of the
-- civil tree, and the divisions (level 2) of the Corps tree — and the region itself when it
-- is one; `all` means every such unit of the register. Each unit follows one source: its own
-- `unit` rows when it has any, else the `under` rows of its nearest region that has some
-- (fewest levels up, either tree; the civil tree first, then the region code, on a tie), else
-- the `all` rows. All rows of that source apply (a rule may change grain from some period).
with

schedule as (

    select
        *,
        coalesce(nullif(trim(scope), ''), 'unit') as rule_scope

    from {{ ref('reporting_schedule') }}

),

closure as (

    select * from {{ ref('int_regions_flattened') }}

),

-- the units a rule names: county-level units of the civil tree, divisions of the Corps tree
rule_units as (

    select
        tree,
        region_code

    from closure
    where
        levels_up = 0
        and ((tree = 'civil' and ancestor_level = 3) or (tree = 'corps' and ancestor_level = 2))

),

-- every (unit, schedule row) that could apply, with how specific its source is
candidate_rows as (

    select
        schedule.reporting_unit_code as unit_code,
        -1 as distance,
        true as is_civil,
        schedule.*

    from schedule
    where schedule.rule_scope = 'unit'

    union all

    select
        rule_units.region_code as unit_code,
        closure.levels_up as distance,
        closure.tree = 'civil' as is_civil,
        schedule.*

    from schedule
    inner join closure
        on schedule.reporting_unit_code = closure.ancestor_code
    inner join rule_units
        on
            closure.tree = rule_units.tree
            and closure.region_code = rule_units.region_code
    where schedule.rule_scope = 'under'

    union all

    select
        rule_units.region_code as unit_code,
        1000 as distance,
        rule_units.tree = 'civil' as is_civil,
        schedule.*

    from schedule
    cross join rule_units
    where schedule.rule_scope = 'all'

),

-- the one source each unit follows
unit_sources as (

    select distinct on (unit_code)
        unit_code,
        rule_scope,
        reporting_unit_code as source_code

    from candidate_rows
    order by unit_code, distance, is_civil desc, reporting_unit_code

),

unit_schedule as (

    select distinct
        candidate_rows.unit_code as reporting_unit_code,
        candidate_rows.grain,
        candidate_rows.deadline_day,
        candidate_rows.deadline_months_after,
        candidate_rows.expected_from,
        candidate_rows.expected_until

    from candidate_rows
    inner join unit_sources
        on
            candidate_rows.unit_code = unit_sources.unit_code
            and candidate_rows.rule_scope = unit_sources.rule_scope
            and candidate_rows.reporting_unit_code is not distinct from unit_sources.source_code

),

periods as (

    select * from {{ ref('dim_period') }}
    where period_grain in ('month', 'quarter')

),

submissions as (

    select * from {{ ref('stg_audit__submission_files') }}

),

regions as (

    select * from {{ ref('dim_region') }}

),

as_of as (

    select {{ quality_as_of() }} as quality_as_of

),

schedule_windows as (

    select
        schedule.reporting_unit_code,
        schedule.grain,
        schedule.deadline_day,
        schedule.deadline_months_after,
        first_period.period_start as window_first_start,
        least(
            coalesce(last_period.period_start, 'infinity'::date),
            date_trunc(schedule.grain, as_of.quality_as_of::timestamp)::date
        ) as window_last_start

    from unit_schedule as schedule
    cross join as_of
    inner join periods as first_period
        on
            schedule.expected_from = first_period.period_code
            and schedule.grain = first_period.period_grain
    left join periods as last_period
        on
            schedule.expected_until = last_period.period_code
            and schedule.grain = last_period.period_grain

),

expected_periods as (

    select
        schedule_windows.reporting_unit_code,
        periods.period_code,
        periods.period_grain,
        periods.period_start,
        periods.period_end,
        schedule_windows.deadline_day,
        schedule_windows.deadline_months_after

    from schedule_windows
    inner join periods
        on
            schedule_windows.grain = periods.period_grain
            and periods.period_start >= schedule_windows.window_first_start
            and periods.period_start <= schedule_windows.window_last_start

),

receipts as (

    select
        loaded.submission_id,
        loaded.reporting_unit_code,
        loaded.period_code,
        {{ period_grain('loaded.period_code') }} as period_grain,
        loaded.period_start,
        loaded.period_end,
        coalesce(original.received_at, loaded.received_at) as received_at

    from submissions as loaded
    left join submissions as original
        on loaded.reprocess_of_submission_id = original.submission_id
    where
        loaded.submission_status = 'loaded'
        and loaded.reporting_unit_code is not null
        -- a registration (pairings only) has no period: it is no periodic report
        and loaded.period_code is not null

),

first_receipts as (

    select distinct on (reporting_unit_code, period_code) *
    from receipts
    order by reporting_unit_code, period_code, received_at, submission_id

),

unexpected_receipts as (

    select first_receipts.*
    from first_receipts
    where not exists (
        select from expected_periods
        where
            expected_periods.reporting_unit_code = first_receipts.reporting_unit_code
            and expected_periods.period_code = first_receipts.period_code
    )

),

unexpected_periods as (

    -- the unit's own deadline rule, when the schedule knows the unit (same grain first)
    select distinct on (unexpected_receipts.reporting_unit_code, unexpected_receipts.period_code)
        unexpected_receipts.reporting_unit_code,
        unexpected_receipts.period_code,
        unexpected_receipts.period_grain,
        unexpected_receipts.period_start,
        unexpected_receipts.period_end,
        unit_rule.deadline_day,
        unit_rule.deadline_months_after

    from unexpected_receipts
    left join unit_schedule as unit_rule
        on unexpected_receipts.reporting_unit_code = unit_rule.reporting_unit_code
    order by
        unexpected_receipts.reporting_unit_code,
        unexpected_receipts.period_code,
        (unit_rule.grain = unexpected_receipts.period_grain) desc,
        (unit_rule.expected_from <= unexpected_receipts.period_code) desc,
        unit_rule.expected_from desc

),

unit_periods as (

    select
        *,
        true as is_expected
    from expected_periods

    union all

    select
        *,
        false as is_expected
    from unexpected_periods

),

-- a unit's name and ancestors: the civil tree when it holds the code, else the Corps tree
unit_regions as (

    select distinct on (regions.region_code)
        regions.region_code as reporting_unit_code,
        region_name as unit_name,
        level_2_code as region_code,
        level_2_name as region_name,
        level_1_code as province_code,
        level_1_name as province_name

    from regions
    -- only the units of this table (the register has every village)
    where regions.region_code in (select reporting_unit_code from unit_periods)
    -- qualified: the output column region_code is the level-2 code
    order by regions.region_code, (regions.tree = 'civil') desc

),

judged as (

    select
        unit_periods.*,
        as_of.quality_as_of,
        {{ reporting_deadline('unit_periods.period_end', 'unit_periods.deadline_months_after', 'unit_periods.deadline_day') }}
            as deadline_date,
        first_receipts.received_at as first_received_at,
        (first_receipts.received_at at time zone 'Asia/Shanghai')::date as received_date,
        first_receipts.submission_id as received_submission_id

    from unit_periods
    cross join as_of
    left join first_receipts
        on
            unit_periods.reporting_unit_code = first_receipts.reporting_unit_code
            and unit_periods.period_code = first_receipts.period_code

),

statused as (

    select
        *,
        case
            when first_received_at is not null and (deadline_date is null or received_date <= deadline_date)
                then 'on_time'
            when first_received_at is not null then 'late'
            when quality_as_of > deadline_date then 'missing'
            else 'pending'
        end as status

    from judged

),

final as (

    select
        ----------  ids
        statused.reporting_unit_code,
        unit_regions.unit_name,
        unit_regions.region_code,
        unit_regions.region_name,
        unit_regions.province_code,
        unit_regions.province_name,
        statused.received_submission_id,

        ---------- periods
        statused.period_code,
        statused.period_grain,
        statused.period_start,
        statused.period_end,

        ---------- dates
        statused.deadline_date,
        statused.quality_as_of,
        statused.received_date,
        statused.first_received_at,

        ---------- status
        statused.is_expected,
        statused.status,
        (
            case
                when statused.status = 'late' then statused.received_date - statused.deadline_date
                when statused.status = 'missing' then statused.quality_as_of - statused.deadline_date
            end
        )::integer as days_late,

        ---------- flags (sum them for reporting rates: received / expected, on_time / expected)
        statused.is_expected::integer as expected,
        (statused.first_received_at is not null)::integer as received,
        (statused.status = 'on_time')::integer as on_time,
        (statused.status = 'late')::integer as late,
        (statused.status = 'missing')::integer as missing,
        (statused.status = 'pending')::integer as pending

    from statused
    left join unit_regions
        on statused.reporting_unit_code = unit_regions.reporting_unit_code

)

select * from final
