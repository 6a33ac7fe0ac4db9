-- Both region trees, one row per tree × code, with the flattened path down from the top of
-- its tree: BI drills province → prefecture → county → township → village (or Corps →
-- division → regiment → company) on the level_N columns without recursion.

with

regions as (

    select * from {{ ref('stg_ref__regions') }}

),

levels as (

    select * from {{ ref('region_levels') }}

),

ancestors as (

    select * from {{ ref('int_regions_flattened') }}

),

paths as (

    select
        region_id,
        {%- for level in range(1, 6) %}
            max(ancestor_code) filter (where ancestor_level = {{ level }}) as level_{{ level }}_code,
            max(ancestor_name) filter (where ancestor_level = {{ level }}) as level_{{ level }}_name,
        {%- endfor %}
        string_agg(ancestor_name, ' > ' order by ancestor_level) as full_path,
        string_agg(ancestor_code, ' > ' order by ancestor_level) as full_path_codes

    from ancestors
    group by region_id

),

final as (

    select
        ----------  ids
        regions.region_id,
        regions.tree,
        regions.region_code,
        regions.parent_code,
        case when regions.parent_code is not null then regions.tree || ':' || regions.parent_code end
            as parent_region_id,
        regions.civil_code,

        ---------- strings
        regions.region_name,
        regions.level_name,
        levels.label_zh as level_label_zh,
        levels.label_en as level_label_en,
        paths.full_path,
        paths.full_path_codes,
        {%- for level in range(1, 6) %}
            paths.level_{{ level }}_code,
            paths.level_{{ level }}_name,
        {%- endfor %}

        ---------- numerics
        regions.region_level::smallint as region_level

    from regions
    left join levels
        on
            regions.tree = levels.tree
            and regions.level_name = levels.level_name
    left join paths
        on regions.region_id = paths.region_id

)

select * from final
