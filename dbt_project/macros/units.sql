{#- Unit conversions. The warehouse stores yuan (元), tonnes (吨) and 亩 (ingestion converts
    万元, 公斤, … on the way in); these give the display units Chinese reports use.
    Exact decimal arithmetic: numeric in, numeric out, no float. -#}

{#- 元 → 万元 (10 000 yuan), kept exact to the fen: 6 decimals. -#}
{% macro yuan_to_wan_yuan(column) -%}
    round(({{ column }})::numeric / 10000, 6)
{%- endmacro %}

{#- 亩 → 公顷 (hectares): 1 公顷 = 15 亩 exactly (1 亩 = 10 000 / 15 m² ≈ 666.67 m²). -#}
{% macro mu_to_hectares(column) -%}
    round(({{ column }})::numeric / 15, 4)
{%- endmacro %}
