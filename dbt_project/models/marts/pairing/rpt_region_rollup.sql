{#- Roll-up of the three facts to every level of both region trees, by month, quarter and
    year. See _pairing__docs.md (rpt_region_rollup) for the choices. A measure a fact line does
    not carry is null there, never 0, and a sum over nulls only is null: an empty figure means
    "no row reported it"; <measure>_rows counts the fact rows behind each figure.

    Incremental by period key (period_grain, period_start): the pre-hook finds the months,
    quarters and years whose facts changed (macros/rollup.sql: a fingerprint of the facts'
    lineage per month, compared with the one recorded after the last build) and deletes
    their rows; this select computes exactly those keys. Two levels, so a stale year costs
    its months' roll-up rows, not its fact rows:
      1. month rows from the fact lines of the stale months (and, for quarters and years,
         the quarterly income reports, which have no month), rolled up to every ancestor;
      2. quarter and year rows as sums of month rows — the fresh ones and the ones the table
         still holds for the other months of the quarter or year — plus the quarterly
         reports. Every measure and <measure>_rows is a sum, so this gives the same numbers
         as summing the fact lines; a sum of nulls only is still null.
    active_pairing_count (distinct pairings) is not a sum: it is counted from the distinct
    (pairing, unit) of the active activity rows in each stale period. -#}

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ refresh_rollup_periods() }}",
        post_hook="{{ record_rollup_lineage() }}",
        indexes=[
            {'columns': ['period_grain', 'period_start']},
        ],
    )
}}


{%- set count_measures = [
    'activity_count', 'participants', 'party_member_participants', 'problems_resolved',
    'suggestions_collected', 'project_count', 'project_households_benefited', 'jobs_created',
    'households_benefited',
] -%}
{%- set decimal_measures = {
    'investment_yuan': 'numeric(20, 2)',
    'land_mu': 'numeric(18, 2)',
    'collective_income_increase_yuan': 'numeric(20, 2)',
    'villager_income_increase_yuan': 'numeric(20, 2)',
    'produce_sold_tonnes': 'numeric(18, 3)',
    'produce_sales_yuan': 'numeric(20, 2)',
} -%}
{%- set measures = count_measures + (decimal_measures.keys() | list) -%}

{%- set activity_values = {
    'activity_count': 'activity_count',
    'participants': 'participants',
    'party_member_participants': 'party_member_participants',
    'problems_resolved': 'problems_resolved',
    'suggestions_collected': 'suggestions_collected',
} -%}
{%- set income_values = {
    'collective_income_increase_yuan': 'collective_income_increase_yuan',
    'villager_income_increase_yuan': 'villager_income_increase_yuan',
    'produce_sold_tonnes': 'produce_sold_tonnes',
    'produce_sales_yuan': 'produce_sales_yuan',
    'jobs_created': 'jobs_created',
    'households_benefited': 'households_benefited',
} -%}
{%- set project_values = {
    'project_count': '1',
    'investment_yuan': 'investment_yuan',
    'land_mu': 'land_mu',
    'project_households_benefited': 'households_benefited',
} -%}
{#- a measure the fact does not carry: a typed null (a union of untyped nulls would be text) -#}
{%- set absent = {} -%}
{%- for measure in measures -%}
    {%- do absent.update({measure: 'null::bigint' if measure in count_measures else 'null::numeric'}) -%}
{%- endfor %}

{%- set incremental = is_incremental() -%}
{%- set region_columns = rollup_region_columns() -%}

with

ancestors as (

    select * from {{ ref('int_regions_flattened') }}

),

-- the fact lines that count in a month being rebuilt (every month on a full build)
month_lines as (

    select
        reporting_unit_code,
        urban_unit_code,
        rural_unit_code,
        activity_month as month_start,
        {%- for measure in measures %}
            {{ activity_values.get(measure, absent[measure]) }} as {{ measure }},
        {%- endfor %}
        is_approximate

    from {{ ref('fct_activity_counts') }}
    {%- if incremental %}
    where activity_month = any({{ rollup_stale_starts('month') }})
    {%- endif %}

    union all

    select
        reporting_unit_code,
        urban_unit_code,
        rural_unit_code,
        period_start as month_start,
        {%- for measure in measures %}
            {{ income_values.get(measure, absent[measure]) }} as {{ measure }},
        {%- endfor %}
        is_approximate

    from {{ ref('fct_income_effects') }}
    where
        period_grain = 'month'
        {%- if incremental %}
            and period_start = any({{ rollup_stale_starts('month') }})
        {%- endif %}

    union all

    -- a project counts in the month it started (its latest reported state)
    select
        reporting_unit_code,
        urban_unit_code,
        rural_unit_code,
        date_trunc('month', project_start_date)::date as month_start,
        {%- for measure in measures %}
            {{ project_values.get(measure, absent[measure]) }} as {{ measure }},
        {%- endfor %}
        is_approximate

    from {{ ref('fct_projects') }}
    {%- if incremental %}
    where date_trunc('month', project_start_date)::date = any({{ rollup_stale_starts('month') }})
    {%- endif %}

),

-- quarterly income reports (no month row): they count in their quarter and year only
quarter_lines as (

    select
        reporting_unit_code,
        urban_unit_code,
        rural_unit_code,
        period_start as quarter_start,
        {%- for measure in measures %}
            {{ income_values.get(measure, absent[measure]) }} as {{ measure }},
        {%- endfor %}
        is_approximate

    from {{ ref('fct_income_effects') }}
    where
        period_grain = 'quarter'
        {%- if incremental %}
            and date_trunc('year', period_start)::date = any({{ rollup_stale_starts('year') }})
        {%- endif %}

),

month_rows as (
    {{ rollup_lines('month_lines', 'month_start', count_measures, decimal_measures) }}
),

quarter_report_rows as (
    {{ rollup_lines('quarter_lines', 'quarter_start', count_measures, decimal_measures) }}
),

-- what a quarter or a year adds up: every month row of it, and its quarterly reports
slot_rows as (

    select *, date_trunc('quarter', month_start)::date as quarter_start
    from month_rows

    {%- if incremental %}

    union all

    -- the months of the quarters and years being rebuilt that did not change: as the table
    -- holds them (the changed ones were deleted by the pre-hook)
    select
        {{ region_columns | join(', ') }},
        period_start as month_start,
        {%- for measure in measures %}
            {{ measure }},
        {%- endfor %}
        {%- for measure in measures %}
            {{ measure }}_rows,
        {%- endfor %}
        is_approximate,
        date_trunc('quarter', period_start)::date as quarter_start

    from {{ this }}
    where
        period_grain = 'month'
        and date_trunc('year', period_start)::date = any({{ rollup_stale_starts('year') }})
    {%- endif %}

    union all

    select
        {{ region_columns | join(', ') }},
        null::date as month_start,
        {%- for measure in measures %}
            {{ measure }},
        {%- endfor %}
        {%- for measure in measures %}
            {{ measure }}_rows,
        {%- endfor %}
        is_approximate,
        quarter_start

    from quarter_report_rows

),

quarter_rows as (
    {{ rollup_sums('slot_rows', 'quarter_start', 'quarter', count_measures, decimal_measures) }}
),

year_rows as (
    {{ rollup_sums('slot_rows', "date_trunc('year', quarter_start)::date", 'year', count_measures, decimal_measures) }}
),

-- pairings with an activity in each period being rebuilt, on each unit they count for
active_lines as (

    select distinct
        activity_month,
        pairing_id,
        reporting_unit_code,
        urban_unit_code,
        rural_unit_code

    from {{ ref('fct_activity_counts') }}
    where
        activity_count > 0
        {%- if incremental %}
        -- every month of the years being rebuilt (a stale month's quarter and year are stale)
        and activity_month = any(array(
            select generate_series(period_start, period_start + interval '11 months', interval '1 month')::date
            from {{ refresh_keys_relation() }}
            where period_grain = 'year'
        ))
        {%- endif %}

),

active_pairing_units as (

    select distinct
        periods.period_grain,
        periods.period_start,
        attribution.attribution,
        attribution.unit_code,
        active_lines.pairing_id

    from active_lines
    cross join
        lateral (
            values
            ('month', active_lines.activity_month),
            ('quarter', date_trunc('quarter', active_lines.activity_month)::date),
            ('year', date_trunc('year', active_lines.activity_month)::date)
        ) as periods (period_grain, period_start)
    cross join
        lateral (
            values
            ('reporting_unit', active_lines.reporting_unit_code),
            ('urban_unit', active_lines.urban_unit_code),
            ('rural_unit', active_lines.rural_unit_code)
        ) as attribution (attribution, unit_code)
    where
        attribution.unit_code is not null
        {%- if incremental %}
        and (periods.period_grain, periods.period_start) in (
            select period_grain, period_start from {{ refresh_keys_relation() }}
        )
        {%- endif %}

),

-- distinct, then counted (a count(distinct) would sort every group)
active_pairings as (

    select
        period_grain,
        period_start,
        attribution,
        region_id,
        count(*)::bigint as active_pairing_count

    from (
        select distinct
            active_pairing_units.period_grain,
            active_pairing_units.period_start,
            active_pairing_units.attribution,
            ancestors.ancestor_id as region_id,
            active_pairing_units.pairing_id
        from active_pairing_units
        inner join ancestors
            on active_pairing_units.unit_code = ancestors.region_code
    ) as active_in_region
    group by period_grain, period_start, attribution, region_id

),

summed_rows as (

    select
        {{ region_columns | join(', ') }},
        'month' as period_grain,
        month_start as period_start,
        {%- for measure in measures %}
            {{ measure }},
        {%- endfor %}
        {%- for measure in measures %}
            {{ measure }}_rows,
        {%- endfor %}
        is_approximate

    from month_rows

    union all

    select * from quarter_rows

    union all

    select * from year_rows

),

rolled_up as (

    select
        summed_rows.*,
        coalesce(active_pairings.active_pairing_count, 0)::bigint as active_pairing_count

    from summed_rows
    left join active_pairings
        on
            summed_rows.period_grain = active_pairings.period_grain
            and summed_rows.period_start = active_pairings.period_start
            and summed_rows.attribution = active_pairings.attribution
            and summed_rows.region_id = active_pairings.region_id

),

final as (

    select
        ----------  ids
        {{ surrogate_key(['attribution', 'region_id', 'period_grain', 'period_start']) }} as rollup_id,
        attribution,
        case attribution
            when 'reporting_unit' then '填报单位'
            when 'urban_unit' then '城市单位'
            when 'rural_unit' then '农村单位'
        end as attribution_label_zh,
        tree,
        region_id,
        region_code,

        ---------- strings
        region_name,
        level_name,

        ---------- numerics
        region_level::smallint as region_level,

        ---------- periods
        period_grain,
        case period_grain
            when 'month' then {{ month_code('period_start') }}
            when 'quarter' then {{ quarter_code('period_start') }}
            else {{ year_code('period_start') }}
        end as period_code,
        period_start,
        (period_start + case period_grain
            when 'month' then interval '1 month'
            when 'quarter' then interval '3 months'
            else interval '1 year'
        end - interval '1 day')::date as period_end,

        ---------- measures (null: no row reported it), and the fact rows behind each
        {%- for measure in measures %}
            {{ measure }},
            {{ measure }}_rows,
        {%- endfor %}
        active_pairing_count,

        ---------- display units (万元, 公顷)
        -- typed as the contract says: an incremental run's new rows must match the table
        ({{ yuan_to_wan_yuan('investment_yuan') }})::numeric(24, 6) as investment_wan_yuan,
        ({{ yuan_to_wan_yuan('collective_income_increase_yuan') }})::numeric(24, 6)
            as collective_income_increase_wan_yuan,
        ({{ yuan_to_wan_yuan('villager_income_increase_yuan') }})::numeric(24, 6) as villager_income_increase_wan_yuan,
        ({{ yuan_to_wan_yuan('produce_sales_yuan') }})::numeric(24, 6) as produce_sales_wan_yuan,
        ({{ mu_to_hectares('land_mu') }})::numeric(18, 4) as land_hectares,

        ---------- flags
        is_approximate

    from rolled_up

)

select * from final
