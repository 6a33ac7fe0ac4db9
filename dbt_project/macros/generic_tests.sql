{#- Generic data tests (dbt_utils is out of reach: no packages can be downloaded). -#}

{#- No two rows share the same values in `columns`. -#}
{% test unique_combination(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as row_count
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{#- Every row satisfies `expression` (a boolean SQL expression over the model's columns). -#}
{% test expression_is_true(model, expression) %}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}

{#- SCD2: no `key` has two current versions (none is allowed: a pairing removed by a
    correction is closed by the snapshot's hard_deletes: invalidate). -#}
{% test at_most_one_current_version(model, key, current_column='is_current') %}
    select {{ key }}, count(*) filter (where {{ current_column }}) as current_versions
    from {{ model }}
    group by {{ key }}
    having count(*) filter (where {{ current_column }}) > 1
{% endtest %}

{#- Closure check: every region of `region_model` has a path up to a level-1 region of its
    tree (no orphans, no broken parent links). -#}
{% test every_region_reaches_root(model, region_model) %}
    select regions.region_id
    from {{ region_model }} as regions
    where not exists (
        select from {{ model }} as closure
        where closure.region_id = regions.region_id
            and closure.ancestor_level = 1
    )
{% endtest %}
