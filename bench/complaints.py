"""Complaints as citizens send them: every village of Guazhou, every category, some contacts.

The same bodies go to yijian and to the bare baseline endpoint, so both parse the same bytes.
No Idempotency-Key: each request is a new complaint, as most are.
"""

from __future__ import annotations

import json
import random

from bench.http1 import post
from yijian.jurisdiction import Jurisdiction
from yijian.policy import SlaPolicy

PATH = "/api/v1/complaints"
# Replaced per request by the load generator (LoadPlan.stamp): every complaint with a contact
# has a phone number of its own, as citizens do, so intake's per-phone limit never refuses one.
PHONE_STAMP = b"########"
_WHAT = ("路灯坏了", "垃圾没人清运", "下水道堵塞", "噪音扰民", "道路坑洼", "自来水停了")
_SURNAMES = "王李张刘陈杨赵黄周吴"


def complaint_bodies(count: int = 500, seed: int = 6) -> list[bytes]:
    """``count`` distinct, valid complaint bodies (JSON), the same for the same seed."""
    rng = random.Random(seed)
    villages = [village.code for village in Jurisdiction.load().villages()]
    categories = SlaPolicy.default().categories_named()
    bodies = []
    for n in range(count):
        body: dict[str, object] = {
            "description": f"{rng.choice(_WHAT)}，已经{rng.randint(1, 9)}天了（#{n}）",
            "category": rng.choice(categories),
            "location": {"village_code": rng.choice(villages)},
            "urgency": "urgent" if rng.random() < 0.1 else "normal",
        }
        if rng.random() < 0.5:
            body["contact"] = {
                "name": rng.choice(_SURNAMES),
                "phone": "138" + PHONE_STAMP.decode(),
            }
        bodies.append(json.dumps(body, ensure_ascii=False).encode())
    return bodies


def complaint_requests(port: int, count: int = 500) -> tuple[bytes, ...]:
    """Prepared POST /api/v1/complaints requests for a server on ``port``."""
    return tuple(post(port, PATH, body) for body in complaint_bodies(count))
