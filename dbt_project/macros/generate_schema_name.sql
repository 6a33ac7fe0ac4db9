{#- Custom schema names are used as they are (staging, intermediate, marts, snapshots, seeds),
    not prefixed with the target schema: BI tools and grants name `marts` directly. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
