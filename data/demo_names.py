"""Fictional Chinese names for the demo district (plausible, invented; any match with a real place is chance)."""

from __future__ import annotations

import numpy as np

SCHOOL_NAMES = {
    "primary": [
        "示范区实验小学", "示范区第一小学", "示范区第二小学", "示范区第三小学", "示范区第四小学",
        "示范区第五小学", "新桥小学", "和平路小学", "文华小学", "星海小学", "滨河小学", "育才小学",
        "经纬小学", "建设路小学", "光明小学", "阳光小学", "明德小学", "崇文小学", "红星小学", "向阳小学",
    ],
    "junior": ["示范区第一初级中学", "示范区第二初级中学", "示范区第五中学", "示范区第七中学",
               "新桥中学", "文华初级中学", "示范区第十四中学"],
    "senior": ["示范区第一高级中学", "示范区第二高级中学", "示范区实验高级中学", "示范区育才高级中学"],
    "nine_year": ["示范区外国语学校", "和平九年一贯制学校", "星海学校"],
    "complete": ["示范区第三中学", "示范区第四中学"],
    "vocational": ["示范区职业高级中学", "示范区中等职业技术学校", "示范区技工学校"],
    "special": ["示范区特殊教育学校"],
    "kindergarten": ["示范区机关幼儿园", "示范区第一幼儿园", "示范区第二幼儿园", "示范区实验幼儿园", "新桥幼儿园",
                     "文华幼儿园", "东湖幼儿园", "星海幼儿园", "和平幼儿园", "滨河幼儿园"],
}  # fmt: skip
STUDENTS = {
    "primary": (700, 2400), "junior": (800, 1800), "senior": (1200, 3000), "nine_year": (1200, 2600),
    "complete": (1500, 3200), "vocational": (900, 2800), "special": (80, 220), "kindergarten": (150, 450),
}  # fmt: skip

CAFE_CHAINS = ["星海网咖", "极光电竞", "蓝鲸网络会所"]
CAFE_WORDS = [
    "飞越", "极速", "星空", "梦幻", "蓝天", "零度", "火狐", "追梦", "新干线", "E时代", "网虫", "天际", "风云",
    "酷玩", "联众", "银河", "未来", "速客", "英雄", "青春", "时光", "翼龙", "闪电", "畅想", "启航", "云端",
    "骑士", "王者", "快乐", "新世纪", "红蜻蜓", "朝阳", "海豚", "雷霆", "领航", "金手指", "大本营", "无限",
]  # fmt: skip
CAFE_SUFFIXES = ["网吧", "网咖", "网络会所", "电竞馆"]
UNLICENSED_NAMES = ["未挂牌网吧", "电脑培训室", "游戏工作室", "无名网吧", "网络休闲室", "上网室", "电脑室"]
GAME_WORDS = [
    "欢乐",
    "星际",
    "动感",
    "童趣",
    "嘉年华",
    "奇幻",
    "彩虹",
    "极限",
    "汤姆熊",
    "快乐谷",
    "电玩",
    "梦工场",
]
GAME_SUFFIXES = ["电玩城", "游艺厅", "动漫城", "游戏厅"]
KTV_WORDS = [
    "金嗓子",
    "麦霸",
    "星光",
    "纯K",
    "音乐汇",
    "好声音",
    "唱吧",
    "歌友",
    "金色年华",
    "夜上海",
    "百乐门",
]
KTV_SUFFIXES = ["KTV", "量贩式KTV", "歌舞厅", "娱乐会所"]
BOOK_WORDS = [
    "新华书店",
    "博文",
    "求知",
    "书香",
    "学海",
    "启明",
    "文苑",
    "墨香",
    "晨光",
    "大众",
    "三味",
    "知行",
]
BOOK_SUFFIXES = ["书店", "书社", "文具书店", "图书城", "报刊亭"]
COMPOUND_WORDS = [
    "星海", "文华", "锦绣", "金桥", "翠柳", "和平", "东湖", "阳光", "丽景", "翰林", "碧水", "紫荆", "枫林", "御景",
    "滨江", "书香", "怡和", "华府", "天悦", "名门", "福星", "长青", "国际", "新城", "学府", "世纪", "云景", "桂园",
]  # fmt: skip
COMMUNITY_WORDS = [
    "东湖", "文昌", "育才", "新华", "解放", "胜利", "建设", "光明", "幸福", "和谐", "民主", "团结", "友谊", "青年",
    "红旗", "新民", "长江", "太平", "永安", "福寿", "吉祥", "安居", "南苑", "北苑", "东苑", "西苑", "金沙", "银杏",
    "梧桐", "樱花", "桂花", "荷花", "杨柳", "松柏", "龙泉", "凤凰",
]  # fmt: skip
COMPOUND_SUFFIXES = ["花园", "小区", "家园", "新村", "公寓", "苑", "华庭", "雅居", "社区", "里"]
TOWER_NAMES = ["大厦", "商住楼", "广场", "中心", "公寓楼"]


def cafe_name(rng: np.random.Generator, used: set[str], place: str, *, chain: str | None = None) -> str:
    """A unique net-café name, e.g. 星海网咖(东湖店) or 飞越网吧."""
    for attempt in range(200):
        if chain:
            name = f"{chain}({place}{'二' if attempt else ''}店)"
        else:
            word = CAFE_WORDS[int(rng.integers(len(CAFE_WORDS)))]
            name = word + CAFE_SUFFIXES[int(rng.choice(4, p=[0.55, 0.25, 0.1, 0.1]))]
            if attempt > 20:
                name = f"{place}{name}"
        if name not in used:
            used.add(name)
            return name
    raise RuntimeError("ran out of café names")


def venue_name(
    rng: np.random.Generator, used: set[str], words: list[str], suffixes: list[str], place: str
) -> str:
    """A unique name from ``words`` x ``suffixes``, prefixed with ``place`` when needed."""
    for attempt in range(200):
        name = words[int(rng.integers(len(words)))] + suffixes[int(rng.integers(len(suffixes)))]
        if attempt > 10:
            name = f"{place}{name}"
        if attempt > 60:
            name = f"{name}{attempt}"
        if name not in used:
            used.add(name)
            return name
    raise RuntimeError("ran out of venue names")


def compound_name(rng: np.random.Generator, used: set[str]) -> str:
    """A unique residential-compound name, e.g. 锦绣家园 or 翠柳新村二期."""
    for attempt in range(400):
        name = COMPOUND_WORDS[int(rng.integers(len(COMPOUND_WORDS)))]
        name += COMPOUND_SUFFIXES[int(rng.integers(len(COMPOUND_SUFFIXES)))]
        if attempt > 8:
            name += ["二期", "三期", "东区", "西区", "南区", "北区"][attempt % 6]
        if name not in used:
            used.add(name)
            return name
    raise RuntimeError("ran out of compound names")


def poi_variant(name: str, rng: np.random.Generator, place: str) -> str:
    """How a map crawl might spell a known venue: 星海网咖(东湖店) → 星海网吧 / 星海网咖东湖店 …"""
    base, _, branch = name.partition("(")
    branch = branch.rstrip(")")
    for a, b in (("网咖", "网吧"), ("网吧", "网咖"), ("网络会所", "网咖"), ("电竞馆", "电竞网咖")):
        if base.endswith(a):
            swapped = base[: -len(a)] + b
            break
    else:
        swapped = base + "网咖"
    options = [swapped, base, f"{swapped}({branch or place + '店'})", f"{base}{branch}", f"{base}({place}店)"]
    options = [o for o in dict.fromkeys(options) if o != name]
    return options[int(rng.integers(len(options)))]
