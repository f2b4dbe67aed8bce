"""When, where and about what the simulated citizens complain.

Arrivals are a Poisson process whose rate follows the scenario's hourly and weekday profile,
counted per slot; a slot's complaints are submitted together at its start, so the system
settles once per slot instead of once per complaint. The draws depend on the seed and the
scenario only, never on the policy: two policies replay the very same complaints.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.simulator.scenario import Scenario
from yijian.calendar import SHANGHAI
from yijian.contracts.events import Urgency
from yijian.jurisdiction import Jurisdiction

# What a citizen might write, per category; made up for the simulation and marked as such,
# so a simulated complaint can never be taken for a real one in a kept data folder.
_SAYINGS: dict[str, tuple[str, ...]] = {
    "邻里纠纷": ("邻居院墙越界占了我家地方", "楼上夜里噪音太大，协商不成"),
    "婚恋家庭": ("子女不履行赡养义务，老人生活困难", "夫妻矛盾激化，请村里帮助调解"),
    "征地拆迁": ("征地补偿款迟迟没有发放", "拆迁安置面积和当初说的不一致"),
    "环境卫生": ("村口垃圾堆放多日无人清运", "养殖场粪污流到路上，气味很大"),
    "道路交通": ("村道路面塌陷，车辆通行危险", "路口路灯坏了，晚上看不清路"),
    "水电供应": ("自来水停了两天还没恢复", "电压不稳，家里电器用不了"),
    "治安隐患": ("村里空房常有陌生人出入", "路边电线杆倾斜，担心砸到行人"),
    "重大矛盾纠纷": ("两个村因灌溉用水发生冲突，人数较多", "多户村民因土地纠纷聚集"),
    "其他": ("想咨询惠民政策怎么办理", "反映一个村务公开方面的问题"),
}

Picker = Callable[[random.Random], str]  # draws a village code


@dataclass(frozen=True)
class Arrival:
    number: int  # 1, 2, … in order of arrival: names the complaint in the staff's draws
    at: datetime
    village_code: str
    category: str
    urgency: Urgency
    description: str


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by counting uniform products (Knuth); slots have small means."""
    if mean <= 0:
        return 0
    if mean > 500:  # exp(-mean) would underflow; split, since Poisson counts add up
        half = poisson(rng, mean / 2)
        return half + poisson(rng, mean - mean / 2)
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def describe(category: str, rng: random.Random) -> str:
    sayings = _SAYINGS.get(category, (f"反映{category}方面的问题",))
    return f"【模拟】{rng.choice(sayings)}"


def arrivals(scenario: Scenario, jurisdiction: Jurisdiction) -> list[Arrival]:
    rng = random.Random(f"{scenario.seed}/arrivals")
    plan = scenario.arrivals
    hour_share = [weight / sum(plan.hourly) for weight in plan.hourly]
    slots_per_hour = round(timedelta(hours=1) / plan.slot)
    villages = _village_picker(scenario, jurisdiction)
    categories = list(scenario.categories)
    category_weights = list(scenario.categories.values())

    found: list[Arrival] = []
    moment = scenario.start
    while moment < scenario.end:
        local = moment.astimezone(SHANGHAI)
        mean = (
            plan.per_day * plan.weekdays[local.weekday()] * hour_share[local.hour] / slots_per_hour
        )
        for _ in range(poisson(rng, mean)):
            category = rng.choices(categories, category_weights)[0]
            urgent = rng.random() < plan.urgent_share
            found.append(
                Arrival(
                    number=len(found) + 1,
                    at=moment,
                    village_code=villages(rng),
                    category=category,
                    urgency="urgent" if urgent else "normal",
                    description=describe(category, rng),
                )
            )
        moment += plan.slot
    return found


def _village_picker(scenario: Scenario, jurisdiction: Jurisdiction) -> Picker:
    if scenario.locations.spread == "uniform":
        codes = [village.code for village in jurisdiction.villages()]
        return lambda rng: rng.choice(codes)
    weights = scenario.township_weights(jurisdiction)
    townships = [code for code, weight in weights.items() if weight > 0]
    shares = [weights[code] for code in townships]
    inside = {code: [v.code for v in jurisdiction.villages(code)] for code in townships}
    return lambda rng: rng.choice(inside[rng.choices(townships, shares)[0]])
