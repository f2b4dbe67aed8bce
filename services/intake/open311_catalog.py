"""The Open311 service catalogue: one GeoReport v2 service per category of the SLA policy.

A service_code has to be stable (clients store it) and fit in a URL, so the shipped
categories get fixed ASCII codes; a category a county adds to its own policy gets a code
derived from its name, which survives reordering the file and restarts alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# The shipped categories (yijian/policies/default.toml): code, group, what belongs there.
_KNOWN: dict[str, tuple[str, str, str]] = {
    "邻里纠纷": ("neighbour-dispute", "矛盾纠纷", "宅基地边界、噪音、琐事口角等邻里之间的纠纷"),
    "婚恋家庭": ("marriage-family", "矛盾纠纷", "婚姻、赡养、家庭矛盾等"),
    "征地拆迁": ("land-demolition", "矛盾纠纷", "征地、拆迁、补偿中的问题，由乡镇起办"),
    "环境卫生": ("sanitation", "公共服务", "垃圾、污水、畜禽粪污等环境卫生问题"),
    "道路交通": ("roads-traffic", "公共服务", "道路破损、路灯、交通安全隐患等"),
    "水电供应": ("water-power", "公共服务", "停水、停电等影响生活的供水供电问题"),
    "治安隐患": ("public-security", "平安建设", "可能危及人身财产安全的治安隐患"),
    "重大矛盾纠纷": (
        "major-dispute",
        "矛盾纠纷",
        "可能引发群体性事件的重大矛盾纠纷，由县平台直接起办",
    ),
    "其他": ("other", "其他", "不属于以上类别的诉求"),
}


@dataclass(frozen=True)
class AttributeValue:
    key: str
    name: str


@dataclass(frozen=True)
class Attribute:
    """One extra field of a service definition (GeoReport v2 ``attribute``)."""

    code: str
    datatype: str  # string | number | datetime | text | singlevaluelist | multivaluelist
    required: bool
    description: str
    datatype_description: str
    order: int
    values: tuple[AttributeValue, ...] = ()
    variable: bool = True


@dataclass(frozen=True)
class Service:
    code: str
    category: str
    name: str
    description: str
    group: str
    attributes: tuple[Attribute, ...]

    @property
    def metadata(self) -> bool:
        """GeoReport v2: true when the client should fetch the definition for more fields."""
        return bool(self.attributes)


URGENCY = Attribute(
    code="urgency",
    datatype="singlevaluelist",
    required=False,
    description="紧急程度：紧急的诉求签收和办结时限更短，节假日不停表",
    datatype_description="normal 或 urgent，默认 normal",
    order=1,
    values=(AttributeValue("normal", "一般"), AttributeValue("urgent", "紧急")),
)
VILLAGE_CODE = Attribute(
    code="village_code",
    datatype="string",
    required=False,
    description="村(社区)代码：没有坐标时用来指明诉求发生在哪个村(社区)",
    datatype_description="12 位数字，见 GET /api/v1/jurisdictions",
    order=2,
)
GRID_CODE = Attribute(
    code="grid_code",
    datatype="string",
    required=False,
    description="网格代码：知道网格时可直接指明，比坐标更准确",
    datatype_description="15 位数字，见 GET /api/v1/jurisdictions",
    order=3,
)
CONCEAL_FROM_VILLAGE = Attribute(
    code="conceal_from_village",
    datatype="singlevaluelist",
    required=False,
    description="不向所在村(社区)透露诉求人身份：反映村(社区)自身问题时使用；"
    "村(社区)工作人员将看不到姓名、电话和地址，乡镇、县平台仍可查看",
    datatype_description="true 或 false，默认 false",
    order=4,
    values=(AttributeValue("false", "否"), AttributeValue("true", "是")),
)
# Every category takes the same extra fields: urgency changes the deadlines, the two codes
# are the places Open311's lat/long and address cannot name, and the citizen's choice to
# keep their identity from their own village has no GeoReport field of its own.
_ATTRIBUTES = (URGENCY, VILLAGE_CODE, GRID_CODE, CONCEAL_FROM_VILLAGE)


def service_code(category: str) -> str:
    known = _KNOWN.get(category)
    if known is not None:
        return known[0]
    return "c-" + hashlib.sha256(category.encode("utf-8")).hexdigest()[:10]


class Catalog:
    """The services on offer, in the policy's order (the order citizens see them in)."""

    def __init__(self, categories: list[str]) -> None:
        self.services = [_service(category) for category in categories]
        self._by_code = {service.code: service for service in self.services}
        self._by_category = {service.category: service for service in self.services}

    def get(self, code: str) -> Service | None:
        return self._by_code.get(code)

    def code_of(self, category: str | None) -> str | None:
        """The code of a stored complaint's category, even one the policy has since dropped."""
        if category is None:
            return None
        service = self._by_category.get(category)
        return service.code if service else service_code(category)

    def categories_of(self, codes: list[str]) -> list[str]:
        """Categories for the given codes; unknown codes raise KeyError naming them."""
        unknown = [code for code in codes if code not in self._by_code]
        if unknown:
            raise KeyError(", ".join(unknown))
        return [self._by_code[code].category for code in codes]


def _service(category: str) -> Service:
    code, group, description = _KNOWN.get(category, (service_code(category), "其他", category))
    return Service(
        code=code,
        category=category,
        name=category,
        description=description,
        group=group,
        attributes=_ATTRIBUTES,
    )
