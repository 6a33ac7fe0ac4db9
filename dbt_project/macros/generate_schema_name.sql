{#- Custom schema names are used as they are (staging, intermediate, marts, snapshots, seeds),
    not prefixed with the target schema: BI tools and grants name `marts` directly.

    `marts` is where the marts are *published*. A build through `ingestion.dbt.build`
    (write-audit-publish, ingestion/publish.py) sets the var `marts_schema` to `marts_build`:
    the marts are written and tested there, and moved into `marts` only when every test
    passed. Any other dbt command (tests, the nightly quality models) reads and writes
    `marts` itself. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- elif custom_schema_name | trim == 'marts' -%}
        {{ var('marts_schema', 'marts') | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
