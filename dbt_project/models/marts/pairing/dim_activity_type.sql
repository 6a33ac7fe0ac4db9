with

code_list as (

    select * from {{ ref('activity_types') }}

),

final as (

    select
        code,
        label_zh,
        label_en,
        sort_order

    from code_list

)

select * from final
