-- Reporting completeness and timeliness (DHIS2-style reporting rates): one row per reporting
-- unit × period the schedule (seed reporting_schedule) expects up to the period containing
-- var quality_as_of, plus every unit × period with a loaded file that was not expected.
-- A period counts as received when a file for it loaded; the receipt time of a re-run
-- (pairstats reprocess) is that of the original receipt, when the district sent it. A
-- registration (a pairings-only file, no period) is no periodic report: it counts for none.

with

schedule as (

    select * from {{ ref('reporting_schedule') }}

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
    -- qualified: the output column region_code is the level-2 code
    order by regions.region_code, (regions.tree = 'civil') desc

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

    from schedule
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

unexpected_periods as (

    select
        first_receipts.reporting_unit_code,
        first_receipts.period_code,
        first_receipts.period_grain,
        first_receipts.period_start,
        first_receipts.period_end,
        unit_rule.deadline_day,
        unit_rule.deadline_months_after

    from first_receipts
    -- the unit's own deadline rule, when the schedule knows the unit (same grain first)
    left join lateral (
        select
            schedule.deadline_day,
            schedule.deadline_months_after
        from schedule
        where schedule.reporting_unit_code = first_receipts.reporting_unit_code
        order by
            (schedule.grain = first_receipts.period_grain) desc,
            (schedule.expected_from <= first_receipts.period_code) desc,
            schedule.expected_from desc
        limit 1
    ) as unit_rule on true
    where not exists (
        select from expected_periods
        where
            expected_periods.reporting_unit_code = first_receipts.reporting_unit_code
            and expected_periods.period_code = first_receipts.period_code
    )

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
