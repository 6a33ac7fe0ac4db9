-- The roll-up neither loses nor invents anything: on the reporting unit, the civil tree's
-- top level (provinces), summed over all years, equals the facts' own totals. Returns the
-- measures that differ.

with

activity_totals as (

    select
        coalesce(sum(activity_count), 0) as activity_count,
        coalesce(sum(participants), 0) as participants
    from {{ ref('fct_activity_counts') }}

),

project_totals as (

    select
        count(*) as project_count,
        coalesce(sum(investment_yuan), 0) as investment_yuan
    from {{ ref('fct_projects') }}

),

income_totals as (

    select coalesce(sum(villager_income_increase_yuan), 0) as villager_income_increase_yuan
    from {{ ref('fct_income_effects') }}

),

rolled_up as (

    select
        coalesce(sum(activity_count), 0) as activity_count,
        coalesce(sum(participants), 0) as participants,
        coalesce(sum(project_count), 0) as project_count,
        coalesce(sum(investment_yuan), 0) as investment_yuan,
        coalesce(sum(villager_income_increase_yuan), 0) as villager_income_increase_yuan
    from {{ ref('rpt_region_rollup') }}
    where
        attribution = 'reporting_unit'
        and tree = 'civil'
        and region_level = 1
        and period_grain = 'year'

),

compared as (

    select
        'activity_count' as measure,
        activity_totals.activity_count::numeric as in_facts,
        rolled_up.activity_count::numeric as in_rollup
    from activity_totals cross join rolled_up

    union all

    select
        'participants' as measure,
        activity_totals.participants::numeric as in_facts,
        rolled_up.participants::numeric as in_rollup
    from activity_totals cross join rolled_up

    union all

    select
        'project_count' as measure,
        project_totals.project_count::numeric as in_facts,
        rolled_up.project_count::numeric as in_rollup
    from project_totals cross join rolled_up

    union all

    select
        'investment_yuan' as measure,
        project_totals.investment_yuan as in_facts,
        rolled_up.investment_yuan as in_rollup
    from project_totals cross join rolled_up

    union all

    select
        'villager_income_increase_yuan' as measure,
        income_totals.villager_income_increase_yuan as in_facts,
        rolled_up.villager_income_increase_yuan as in_rollup
    from income_totals cross join rolled_up

)

select * from compared
where in_facts <> in_rollup
