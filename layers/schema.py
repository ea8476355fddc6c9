"""The declared schema of every layer kind a bureau keeps.

A :class:`LayerSchema` names the canonical (English) fields of one kind, their
types, which are required, the headers bureaus really use for them (Chinese
aliases such as 名称, 经度, 许可证号) and, for categorical fields, the allowed
values with their Chinese spellings.  Readers and validation are driven by these
declarations only; nothing else in civicmap hard-codes a column name.

Every stored layer has the columns ``id`` (str, stable), the declared fields, and
``geometry`` in WGS84 (EPSG:4326).  ``approximate`` (bool) is added to layers whose
geometry may be thinner than analysis wants (a school given as a point).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# ---------------------------------------------------------------- field types
STR = "str"
INT = "int"
FLOAT = "float"
BOOL = "bool"
CATEGORY = "category"
DATE = "date"

POINT = "Point"
POLYGON = "Polygon"
LINE = "LineString"


@dataclass(frozen=True)
class Field:
    """One declared attribute of a layer kind."""

    name: str
    type: str = STR
    required: bool = False
    aliases: tuple[str, ...] = ()
    #: for CATEGORY: canonical value -> accepted spellings (case-insensitive)
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    default: object = None
    min_value: float | None = None
    label_zh: str = ""
    label_en: str = ""

    def allowed_text(self) -> str:
        """Allowed categorical values as a user-readable list."""
        return ", ".join(
            f"{value} ({'/'.join(spellings)})" if spellings else value
            for value, spellings in self.choices.items()
        )


@dataclass(frozen=True)
class LayerSchema:
    """The declared shape of one layer kind."""

    kind: str
    label_zh: str
    label_en: str
    fields: tuple[Field, ...]
    #: geometry families accepted: any of POINT, POLYGON, LINE
    geometry: tuple[str, ...]
    #: geometry family that is complete; others are accepted but ``approximate``
    preferred_geometry: str | None = None
    #: (field, parent kind) for child layers such as gates and doors
    parent: tuple[str, str] | None = None
    id_prefix: str = ""

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


# ------------------------------------------------------------ shared aliases
# Coordinate columns for CSV/XLSX; matched case-insensitively after trimming.
LON_ALIASES = ("lon", "lng", "long", "longitude", "x", "经度", "東經", "经度坐标", "坐标x", "x坐标")
LAT_ALIASES = ("lat", "latitude", "y", "纬度", "北纬", "纬度坐标", "坐标y", "y坐标")
WKT_ALIASES = ("wkt", "geometry", "geom", "几何", "空间信息")
ID_ALIASES = ("id", "编号", "序号id", "fid", "uid", "代码", "唯一编号")

_NAME = Field(
    "name",
    STR,
    required=True,
    aliases=("名称", "场所名称", "单位名称", "学校名称", "设施名称", "名字", "店名", "小区名称", "街道名称"),
    label_zh="名称",
    label_en="Name",
)
_ADDRESS = Field(
    "address", aliases=("地址", "详细地址", "经营地址", "场所地址"), label_zh="地址", label_en="Address"
)
_SUBDISTRICT = Field(
    "subdistrict",
    aliases=("所属街道", "街道", "乡镇街道", "街道/乡镇", "乡镇"),
    label_zh="所属街道",
    label_en="Sub-district",
)
_LICENCE = Field(
    "licence_no",
    aliases=("许可证号", "许可证编号", "经营许可证号", "license_no", "licence", "license"),
    label_zh="许可证号",
    label_en="Licence no.",
)
_STATUS = Field(
    "status",
    CATEGORY,
    aliases=("状态", "经营状态", "许可状态"),
    choices={
        "licensed": ("正常", "在营", "营业", "已许可", "持证", "有证"),
        "suspended": ("停业", "停业整顿", "暂停", "暂停营业"),
        "revoked": ("吊销", "注销", "撤销", "已吊销", "已注销"),
        "unlicensed": ("无证", "未许可", "无照", "黑网吧"),
    },
    default="licensed",
    label_zh="状态",
    label_en="Status",
)
_POPULATION = Field(
    "population",
    INT,
    aliases=("人口", "常住人口", "户籍人口", "人口数", "居住人口"),
    min_value=0,
    label_zh="人口",
    label_en="Population",
)

SCHOOL_LEVELS: dict[str, tuple[str, ...]] = {
    "primary": ("小学",),
    "junior": ("初中", "初级中学"),
    "senior": ("高中", "高级中学", "普通高中"),
    "nine_year": ("九年一贯制", "九年一贯制学校"),
    "complete": ("完全中学", "完中", "中学"),
    "vocational": ("中职", "职高", "职业高中", "中等职业学校", "中专", "技工学校"),
    "special": ("特殊教育", "特教", "特殊教育学校"),
    "kindergarten": ("幼儿园", "幼稚园", "托幼"),
}

FACILITY_TYPES: dict[str, tuple[str, ...]] = {
    "library": ("图书馆", "公共图书馆", "分馆"),
    "cultural_centre": ("文化馆", "群众艺术馆", "文化中心", "文化宫"),
    "cultural_station": ("文化站", "综合文化站", "乡镇文化站", "街道文化站"),
    "service_point": ("服务点", "基层综合性文化服务中心", "综合文化服务中心", "文化活动室", "文化礼堂"),
    "theatre": ("剧院", "剧场", "影剧院"),
    "cinema": ("影院", "电影院"),
    "museum": ("博物馆", "纪念馆", "展览馆", "美术馆"),
    "heritage_site": ("文物", "文保单位", "文物保护单位", "遗址"),
    "patriotic_base": ("爱国主义教育基地", "红色教育基地"),
    "city_study_room": ("城市书房", "书房", "自助图书馆"),
    "other": ("其他",),
}

VENUE_KINDS = ("net_cafes", "game_venues", "entertainment_venues", "publication_sellers")


def _venue_fields(*extra: Field) -> tuple[Field, ...]:
    return (_NAME, _LICENCE, _STATUS, _ADDRESS, _SUBDISTRICT, *extra)


SCHEMAS: dict[str, LayerSchema] = {
    s.kind: s
    for s in (
        LayerSchema(
            "schools",
            "学校",
            "Schools",
            (
                _NAME,
                Field(
                    "level",
                    CATEGORY,
                    required=True,
                    aliases=("学段", "学校类型", "类型", "办学层次", "类别"),
                    choices=SCHOOL_LEVELS,
                    label_zh="学段",
                    label_en="Level",
                ),
                _ADDRESS,
                _SUBDISTRICT,
                Field(
                    "students",
                    INT,
                    aliases=("学生数", "在校生", "在校生数"),
                    min_value=0,
                    label_zh="在校生数",
                    label_en="Students",
                ),
            ),
            geometry=(POLYGON, POINT),
            preferred_geometry=POLYGON,
            id_prefix="sch",
        ),
        LayerSchema(
            "school_gates",
            "校门",
            "School gates",
            (
                Field(
                    "school_id",
                    STR,
                    required=True,
                    aliases=("学校编号", "学校id", "所属学校"),
                    label_zh="学校编号",
                    label_en="School id",
                ),
                Field("name", aliases=("名称", "校门名称"), label_zh="名称", label_en="Name"),
                Field(
                    "gate_type",
                    CATEGORY,
                    aliases=("类型", "校门类型"),
                    choices={
                        "main": ("正门", "主门", "大门"),
                        "side": ("侧门", "边门"),
                        "back": ("后门",),
                        "fire": ("消防门", "应急门"),
                        "other": ("其他",),
                    },
                    default="main",
                    label_zh="校门类型",
                    label_en="Gate type",
                ),
            ),
            geometry=(POINT,),
            parent=("school_id", "schools"),
            id_prefix="gate",
        ),
        LayerSchema(
            "net_cafes",
            "网吧",
            "Net cafés",
            _venue_fields(
                Field(
                    "terminals",
                    INT,
                    aliases=("终端数", "终端台数", "机器数", "电脑台数"),
                    min_value=0,
                    label_zh="终端数",
                    label_en="Terminals",
                ),
                Field(
                    "chain",
                    aliases=("连锁品牌", "连锁", "品牌", "连锁企业"),
                    label_zh="连锁品牌",
                    label_en="Chain",
                ),
            ),
            geometry=(POINT, POLYGON),
            id_prefix="nc",
        ),
        LayerSchema(
            "game_venues", "游艺娱乐场所", "Game venues", _venue_fields(), (POINT, POLYGON), id_prefix="gv"
        ),
        LayerSchema(
            "entertainment_venues",
            "歌舞娱乐场所",
            "Entertainment venues",
            _venue_fields(),
            (POINT, POLYGON),
            id_prefix="ev",
        ),
        LayerSchema(
            "publication_sellers",
            "出版物经营单位",
            "Publication sellers",
            _venue_fields(),
            (POINT, POLYGON),
            id_prefix="ps",
        ),
        LayerSchema(
            "venue_doors",
            "场所出入口",
            "Venue doors",
            (
                Field(
                    "venue_id",
                    STR,
                    required=True,
                    aliases=("场所编号", "场所id", "所属场所"),
                    label_zh="场所编号",
                    label_en="Venue id",
                ),
                Field(
                    "venue_kind",
                    CATEGORY,
                    aliases=("场所类型",),
                    choices={k: () for k in VENUE_KINDS},
                    default="net_cafes",
                    label_zh="场所类型",
                    label_en="Venue kind",
                ),
                Field(
                    "floor", INT, aliases=("楼层", "所在楼层"), default=1, label_zh="楼层", label_en="Floor"
                ),
                Field("name", aliases=("名称", "出入口名称"), label_zh="名称", label_en="Name"),
            ),
            geometry=(POINT,),
            parent=("venue_id", "venues"),
            id_prefix="door",
        ),
        LayerSchema(
            "cultural_facilities",
            "文化设施",
            "Cultural facilities",
            (
                _NAME,
                Field(
                    "type",
                    CATEGORY,
                    required=True,
                    aliases=("设施类型", "类型", "类别"),
                    choices=FACILITY_TYPES,
                    label_zh="设施类型",
                    label_en="Type",
                ),
                Field(
                    "free_for_minors",
                    BOOL,
                    aliases=("对未成年人免费", "未成年人免费", "免费开放"),
                    label_zh="对未成年人免费",
                    label_en="Free for minors",
                ),
                Field(
                    "capacity",
                    INT,
                    aliases=("容量", "座位数", "接待能力"),
                    min_value=0,
                    label_zh="容量",
                    label_en="Capacity",
                ),
                Field(
                    "floor_area_m2",
                    FLOAT,
                    aliases=("建筑面积", "面积", "建筑面积(平方米)", "面积㎡"),
                    min_value=0,
                    label_zh="建筑面积(平方米)",
                    label_en="Floor area (m²)",
                ),
                Field("facility_level", aliases=("级别", "层级"), label_zh="级别", label_en="Level"),
                _ADDRESS,
                _SUBDISTRICT,
            ),
            geometry=(POINT, POLYGON),
            id_prefix="cf",
        ),
        LayerSchema(
            "residential",
            "居住区",
            "Residential",
            (
                _NAME,
                _POPULATION,
                Field(
                    "form",
                    CATEGORY,
                    aliases=("形态", "类型"),
                    choices={
                        "building": ("楼栋", "住宅楼", "居民楼"),
                        "compound": ("小区", "院落", "居民院"),
                    },
                    default="compound",
                    label_zh="形态",
                    label_en="Form",
                ),
                Field(
                    "mixed_use",
                    BOOL,
                    aliases=("商住两用", "商住"),
                    default=False,
                    label_zh="商住两用",
                    label_en="Mixed use",
                ),
                _SUBDISTRICT,
            ),
            geometry=(POLYGON, POINT),
            preferred_geometry=POLYGON,
            id_prefix="res",
        ),
        LayerSchema(
            "subdistricts",
            "街道/乡镇",
            "Sub-districts",
            (
                _NAME,
                _POPULATION,
                Field(
                    "code", aliases=("区划代码", "行政区划代码", "代码"), label_zh="区划代码", label_en="Code"
                ),
                Field(
                    "urban",
                    BOOL,
                    aliases=("城区", "是否城区"),
                    default=True,
                    label_zh="城区",
                    label_en="Urban",
                ),
            ),
            geometry=(POLYGON,),
            id_prefix="sd",
        ),
        LayerSchema(
            "roads",
            "道路",
            "Roads",
            (
                Field("name", aliases=("名称", "道路名称", "路名"), label_zh="名称", label_en="Name"),
                Field(
                    "road_class", aliases=("等级", "道路等级", "类型"), label_zh="道路等级", label_en="Class"
                ),
                Field(
                    "walkable",
                    BOOL,
                    aliases=("可步行", "步行"),
                    default=True,
                    label_zh="可步行",
                    label_en="Walkable",
                ),
            ),
            geometry=(LINE,),
            id_prefix="rd",
        ),
        LayerSchema(
            "pois",
            "观测点位",
            "Observed POIs",
            (
                _NAME,
                Field(
                    "category", aliases=("类别", "分类", "标签", "tag"), label_zh="类别", label_en="Category"
                ),
                Field("source", aliases=("来源", "线索来源"), label_zh="来源", label_en="Source"),
                Field(
                    "observed_at",
                    DATE,
                    aliases=("观测日期", "日期", "采集日期"),
                    label_zh="观测日期",
                    label_en="Observed",
                ),
                _ADDRESS,
            ),
            geometry=(POINT,),
            id_prefix="poi",
        ),
        LayerSchema(
            "zones",
            "限制区域",
            "Restricted zones",
            (
                _NAME,
                Field(
                    "zone_type",
                    CATEGORY,
                    required=True,
                    aliases=("区域类型", "类型"),
                    choices={
                        "heritage_protection": ("文物保护范围", "保护范围"),
                        "construction_control": ("建设控制地带", "建控地带"),
                        "other": ("其他", "其他限制区域"),
                    },
                    label_zh="区域类型",
                    label_en="Zone type",
                ),
            ),
            geometry=(POLYGON,),
            id_prefix="zone",
        ),
    )
}

KINDS: tuple[str, ...] = tuple(SCHEMAS)


def get_schema(kind: str) -> LayerSchema:
    """The schema of ``kind``; a :class:`~layers.errors.CivicmapError` names the allowed kinds."""
    from layers.errors import CivicmapError

    try:
        return SCHEMAS[kind]
    except KeyError:
        raise CivicmapError(f"unknown layer kind {kind!r}; expected one of: {', '.join(KINDS)}") from None
