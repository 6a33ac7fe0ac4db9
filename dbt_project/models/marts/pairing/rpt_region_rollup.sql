{#- Roll-up of the three facts to every level of both region trees, by month, quarter and
    year. See _pairing__docs.md (rpt_region_rollup) for the choices. A measure a fact line does
    not carry is null there, never 0, and a sum over nulls only is null: an empty figure means
    "no row reported it"; <measure>_rows counts the fact rows behind each figure. -#}

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

ancestors as (

    select * from {{ ref('int_regions_flattened') }}

),

-- one line per fact row, every measure present (null where the fact has none, or where the
-- row did not report it), and the month / quarter / year it counts in (month is null for a
-- quarterly income report)
fact_lines as (

    select
        reporting_unit_code,
        urban_unit_code,
        rural_unit_code,
        pairing_id,
        activity_month as month_start,
        date_trunc('quarter', activity_month)::date as quarter_start,
        {%- for measure in measures %}
            {{ activity_values.get(measure, absent[measure]) }} as {{ measure }},
        {%- endfor %}
        is_approximate

    from activity_counts

    union all

    select
        reporting_unit_code,
        urban_unit_code,
        rural_unit_code,
        pairing_id,
        case when period_grain = 'month' then period_start end as month_start,
        date_trunc('quarter', period_start)::date as quarter_start,
        {%- for measure in measures %}
            {{ income_values.get(measure, absent[measure]) }} as {{ measure }},
        {%- endfor %}
        is_approximate

    from income_effects

    union all

    -- a project counts in the period it started (its latest reported state)
    select
        reporting_unit_code,
        urban_unit_code,
        rural_unit_code,
        pairing_id,
        date_trunc('month', project_start_date)::date as month_start,
        date_trunc('quarter', project_start_date)::date as quarter_start,
        {%- for measure in measures %}
            {{ project_values.get(measure, absent[measure]) }} as {{ measure }},
        {%- endfor %}
        is_approximate

    from projects

),

-- the same line once for each unit it may be rolled up on
attributed as (

    select
        fact_lines.*,
        attribution.attribution,
        attribution.unit_code

    from fact_lines
    cross join
        lateral (
            values
            ('reporting_unit', fact_lines.reporting_unit_code),
            ('urban_unit', fact_lines.urban_unit_code),
            ('rural_unit', fact_lines.rural_unit_code)
        ) as attribution (attribution, unit_code)
    where attribution.unit_code is not null

),

-- ... to the unit itself and every ancestor, in each tree that holds the unit
placed as (

    select
        attributed.*,
        ancestors.tree,
        ancestors.ancestor_id as region_id,
        ancestors.ancestor_code as region_code,
        ancestors.ancestor_name as region_name,
        ancestors.ancestor_level as region_level,
        ancestors.ancestor_level_name as level_name

    from attributed
    inner join ancestors
        on attributed.unit_code = ancestors.region_code

),

-- ... and in its month, quarter and year
timed as (

    select
        placed.*,
        periods.period_grain,
        periods.period_start

    from placed
    cross join
        lateral (
            values
            ('month', placed.month_start),
            ('quarter', placed.quarter_start),
            ('year', date_trunc('year', placed.quarter_start)::date)
        ) as periods (period_grain, period_start)
    where periods.period_start is not null

),

rolled_up as (

    select
        attribution,
        tree,
        region_id,
        region_code,
        region_name,
        region_level,
        level_name,
        period_grain,
        period_start,
        -- sum() over nulls only is null: no row of the group reported the measure
        {%- for measure in count_measures %}
            sum({{ measure }})::bigint as {{ measure }},
        {%- endfor %}
        {%- for measure, data_type in decimal_measures.items() %}
            sum({{ measure }})::{{ data_type }} as {{ measure }},
        {%- endfor %}
        {%- for measure in measures %}
            count({{ measure }})::bigint as {{ measure }}_rows,
        {%- endfor %}
        count(distinct pairing_id) filter (where activity_count > 0)::bigint as active_pairing_count,
        bool_or(is_approximate) as is_approximate

    from timed
    group by
        attribution,
        tree,
        region_id,
        region_code,
        region_name,
        region_level,
        level_name,
        period_grain,
        period_start

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
        {{ yuan_to_wan_yuan('investment_yuan') }} as investment_wan_yuan,
        {{ yuan_to_wan_yuan('collective_income_increase_yuan') }} as collective_income_increase_wan_yuan,
        {{ yuan_to_wan_yuan('villager_income_increase_yuan') }} as villager_income_increase_wan_yuan,
        {{ yuan_to_wan_yuan('produce_sales_yuan') }} as produce_sales_wan_yuan,
        {{ mu_to_hectares('land_mu') }} as land_hectares,

        ---------- flags
        is_approximate

    from rolled_up

)

select * from final
