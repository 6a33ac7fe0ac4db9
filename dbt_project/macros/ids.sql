{#- A code is unique only within its reporting unit: prefix it with the unit's division code.
    Division codes are digits only, so the first '/' always separates the two parts. -#}
{% macro unit_scoped_id(unit_column, code_column) -%}
    ({{ unit_column }} || '/' || {{ code_column }})
{%- endmacro %}

{#- md5 of the parts joined with a separator that cannot occur in them (a surrogate key). -#}
{% macro surrogate_key(columns) -%}
    md5(
        {%- for column in columns %}
        coalesce(({{ column }})::text, '∅'){% if not loop.last %} || chr(31) ||{% endif %}
        {%- endfor %}
    )
{%- endmacro %}
