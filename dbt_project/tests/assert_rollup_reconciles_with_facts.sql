-- The roll-up neither loses nor invents anything: on the reporting unit, the civil tree's
-- top level (provinces), summed over all years, equals the facts' own totals, measure by
-- measure, and so do the rows behind each figure (count(<measure>) in the facts = the sum of
-- <measure>_rows): a figure no fact row reported must stay empty, never become 0. Sums are
-- compared with coalesce (an empty total is 0 on both sides), row counts exactly. Returns
-- the measures that differ.

{%- set measures = [
    ('fct_activity_counts', 'activity_count', 'activity_count'),
    ('fct_activity_counts', 'participants', 'participants'),
    ('fct_activity_counts', 'party_member_participants', 'party_member_participants'),
    ('fct_projects', '1', 'project_count'),
    ('fct_projects', 'investment_yuan', 'investment_yuan'),
    ('fct_projects', 'land_mu', 'land_mu'),
    ('fct_projects', 'households_benefited', 'project_households_benefited'),
    ('fct_income_effects', 'collective_income_increase_yuan', 'collective_income_increase_yuan'),
    ('fct_income_effects', 'villager_income_increase_yuan', 'villager_income_increase_yuan'),
    ('fct_income_effects', 'produce_sold_tonnes', 'produce_sold_tonnes'),
    ('fct_income_effects', 'produce_sales_yuan', 'produce_sales_yuan'),
    ('fct_income_effects', 'jobs_created', 'jobs_created'),
    ('fct_income_effects', 'households_benefited', 'households_benefited'),
] %}

with

rolled_up as (

    select * from {{ ref('rpt_region_rollup') }}
    where
        attribution = 'reporting_unit'
        and tree = 'civil'
        and region_level = 1
        and period_grain = 'year'

),

compared as (

    {%- for fact, fact_value, measure in measures %}
    select
        '{{ measure }}' as measure,
        facts.in_facts,
        rollup_totals.in_rollup,
        facts.rows_in_facts,
        rollup_totals.rows_in_rollup
    from (
        select
            coalesce(sum({{ fact_value }}), 0)::numeric as in_facts,
            count({{ fact_value }})::bigint as rows_in_facts
        from {{ ref(fact) }}
    ) as facts
    cross join (
        select
            coalesce(sum({{ measure }}), 0)::numeric as in_rollup,
            coalesce(sum({{ measure }}_rows), 0)::bigint as rows_in_rollup
        from rolled_up
    ) as rollup_totals
    {%- if not loop.last %}

    union all
    {% endif %}
    {%- endfor %}

)

select * from compared
where
    in_facts is distinct from in_rollup
    or rows_in_facts is distinct from rows_in_rollup
