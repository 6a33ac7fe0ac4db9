-- The closure of both region trees: one row per region × each of its ancestors, itself
-- included (levels_up 0), with the ancestor's level and name. Roll-ups join facts to this
-- table once instead of walking parent links at query time.

with recursive

regions as (

    select * from {{ ref('stg_ref__regions') }}

),

closure as (

    select
        tree,
        region_code,
        region_code as ancestor_code,
        parent_code as next_code,
        0 as levels_up

    from regions

    union all

    select
        closure.tree,
        closure.region_code,
        parents.region_code as ancestor_code,
        parents.parent_code as next_code,
        closure.levels_up + 1 as levels_up

    from closure
    inner join regions as parents
        on
            closure.tree = parents.tree
            and closure.next_code = parents.region_code
    where closure.levels_up < 10  -- the trees have 5 levels: a guard against a cycle

),

final as (

    select
        closure.tree,
        closure.region_code,
        closure.tree || ':' || closure.region_code as region_id,
        closure.ancestor_code,
        closure.tree || ':' || closure.ancestor_code as ancestor_id,
        ancestors.region_name as ancestor_name,
        ancestors.region_level as ancestor_level,
        ancestors.level_name as ancestor_level_name,
        closure.levels_up

    from closure
    inner join regions as ancestors
        on
            closure.tree = ancestors.tree
            and closure.ancestor_code = ancestors.region_code

)

select * from final
