-- NULL vs 0 in the roll-up: every measure is NULL exactly when no fact row of its group
-- reported it (<measure>_rows = 0). Pairs are found from the columns themselves: every
-- column <m>_rows with its measure <m>. Returns the rows and measures that break it.

{%- set measures = [] %}
{%- if execute %}
    {%- set columns = adapter.get_columns_in_relation(ref('rpt_region_rollup')) | map(attribute='name') | list %}
    {%- for column in columns if column.endswith('_rows') and column[:-5] in columns %}
        {%- do measures.append(column[:-5]) %}
    {%- endfor %}
{%- endif %}

with

rollup as (

    select * from {{ ref('rpt_region_rollup') }}

),

checked as (

    {%- for measure in measures %}
    select
        rollup_id,
        '{{ measure }}' as measure,
        {{ measure }}::text as figure,
        {{ measure }}_rows as figure_rows
    from rollup
    where ({{ measure }} is null) <> ({{ measure }}_rows = 0)
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    -- the roll-up has no <measure>_rows column: that is a failure too
    select null::text as rollup_id, 'no <measure>_rows column' as measure, null::text as figure, null::bigint as figure_rows
    {%- endfor %}

)

select * from checked
