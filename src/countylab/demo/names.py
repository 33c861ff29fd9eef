"""Word pools for the demo county: surnames, given-name characters, place and firm names.

The pools are deliberately plain Chinese (every character is in GB 2312, so the GBK export
of the enterprise register never meets an unencodable character).  Surname weights follow the
published national frequency ranking closely enough that a "top surnames" query returns the
familiar 王/李/张/刘/陈 order — the kind of sanity check a developer runs on dummy data.
"""

from __future__ import annotations

# (surname, share in per mille of the population), roughly the national ranking.
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 71.2),
    ("李", 72.0),
    ("张", 68.3),
    ("刘", 53.8),
    ("陈", 45.3),
    ("杨", 30.8),
    ("黄", 22.3),
    ("赵", 22.9),
    ("吴", 20.5),
    ("周", 19.5),
    ("徐", 16.7),
    ("孙", 15.4),
    ("马", 12.9),
    ("朱", 12.6),
    ("胡", 11.6),
    ("郭", 11.5),
    ("何", 10.6),
    ("林", 9.7),
    ("高", 10.0),
    ("罗", 8.6),
    ("郑", 7.8),
    ("梁", 7.5),
    ("谢", 6.1),
    ("宋", 6.1),
    ("唐", 5.9),
    ("许", 5.5),
    ("韩", 5.5),
    ("冯", 5.3),
    ("邓", 5.2),
    ("曹", 5.1),
    ("彭", 4.9),
    ("曾", 4.7),
    ("肖", 4.6),
    ("田", 4.5),
    ("董", 4.4),
    ("袁", 4.2),
    ("潘", 4.1),
    ("于", 4.1),
    ("蒋", 4.0),
    ("蔡", 4.0),
    ("余", 3.9),
    ("杜", 3.8),
    ("叶", 3.8),
    ("程", 3.7),
    ("苏", 3.6),
    ("魏", 3.5),
    ("吕", 3.5),
    ("丁", 3.4),
    ("任", 3.3),
    ("沈", 3.2),
    ("姚", 3.1),
    ("卢", 3.0),
    ("姜", 2.9),
    ("崔", 2.8),
    ("钟", 2.8),
    ("谭", 2.7),
    ("陆", 2.7),
    ("汪", 2.6),
    ("范", 2.6),
    ("金", 2.5),
    ("石", 2.4),
    ("廖", 2.4),
    ("贾", 2.3),
    ("夏", 2.3),
    ("韦", 2.2),
    ("付", 2.2),
    ("方", 2.1),
    ("白", 2.1),
    ("邹", 2.0),
    ("孟", 2.0),
    ("熊", 2.0),
    ("秦", 1.9),
    ("邱", 1.9),
    ("江", 1.9),
    ("尹", 1.8),
    ("薛", 1.8),
    ("闫", 1.8),
    ("段", 1.7),
    ("雷", 1.7),
    ("侯", 1.6),
    ("龙", 1.6),
    ("史", 1.6),
    ("陶", 1.5),
    ("黎", 1.5),
    ("贺", 1.5),
    ("顾", 1.5),
    ("毛", 1.4),
    ("郝", 1.4),
    ("龚", 1.4),
    ("邵", 1.4),
    ("万", 1.3),
    ("钱", 1.3),
    ("严", 1.3),
    ("覃", 1.2),
    ("武", 1.2),
    ("戴", 1.2),
    ("莫", 1.2),
    ("孔", 1.1),
    ("向", 1.1),
    ("汤", 1.1),
    ("楼", 1.0),
    ("应", 1.0),
    ("俞", 1.0),
    ("章", 1.0),
    ("施", 0.9),
)

# Given-name characters change with the generation; pools indexed [gender][era] where era 0 is
# born before 1965, era 1 is 1965-1989 and era 2 is 1990 or later.
_MALE = (
    "国建华明军平德福宝生根林荣金才富贵忠兴发成昌水海祥清文庆强志",
    "伟勇军杰涛斌超磊鹏辉刚波峰俊亮宏健飞洪晓东龙剑锋新春建志永军",
    "浩宇轩子梓睿泽博航豪俊晨逸涵铭杰哲辰然凯烨翔阳一诚鑫毅昊嘉锦",
)
_FEMALE = (
    "秀英兰芳珍凤桂花玉梅琴莲菊娥翠香美金云彩月素春巧仙荷银爱淑惠",
    "丽静敏燕艳娟霞红玲萍婷洁慧琳颖雪晓倩芳丹莉华青春亚英佳蓉薇妍",
    "欣怡涵诗梦雨琪萱思佳悦可馨妍语梓若彤瑶依嘉晨雅婧菲琳心沁芷茜",
)
GIVEN_CHARS: tuple[tuple[str, ...], tuple[str, ...]] = (_MALE, _FEMALE)
ERA_BOUNDS = (1965, 1990)  # birth years where the naming fashion changes
SINGLE_CHAR_GIVEN_SHARE = (0.30, 0.22, 0.12)  # by era: older people more often have one-character names

COUNTY_NAME = "青禾县"
COUNTY_CODE = "330729"  # fictional: 3307 prefix, a county number not in use

# (name, type, terrain) — terrain drives crops and population density.
TOWNS: tuple[tuple[str, str, str], ...] = (
    ("禾城街道", "街道", "城区"),
    ("青溪街道", "街道", "城区"),
    ("南湖街道", "街道", "城区"),
    ("双溪镇", "镇", "平原"),
    ("石门镇", "镇", "平原"),
    ("白沙镇", "镇", "平原"),
    ("柳塘镇", "镇", "平原"),
    ("桃源镇", "镇", "丘陵"),
    ("云岭镇", "镇", "山区"),
    ("梅山镇", "镇", "山区"),
    ("竹坞镇", "镇", "丘陵"),
    ("枫林镇", "镇", "山区"),
)

VILLAGE_FIRST = "上下东西南北大小前后石柳桥塘溪山松竹梅杏桃李黄白青新高马龙凤金银古长"
VILLAGE_SECOND = "溪塘桥坑岭坞坪湾口头山田畈庄源垄岙圩埠店园湖洋"
COMMUNITY_FIRST = "文新兴和康安平城华阳光盛秀翠锦福泰丰祥瑞"
COMMUNITY_SECOND = "昌华兴安宁苑园桥湖城山门泰康明丰景苑"

ROADS = (
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "新华路",
    "文化路",
    "青禾大道",
    "禾兴路",
    "环城东路",
    "环城西路",
    "城南路",
    "城北路",
    "工业路",
    "学院路",
    "迎宾大道",
    "站前路",
    "府前街",
    "湖滨路",
)

# Characters for enterprise trade names (字号); two are drawn per firm.
BRAND_CHARS = "金华鑫盛兴隆源丰泰达荣恒瑞祥宏昌嘉信诚通博康悦锦和顺益茂万润鼎旺福佳新天宇星辰青禾绿农山溪"
