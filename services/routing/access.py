"""Who may act on a case: staff act only inside their own jurisdiction."""

from __future__ import annotations

from services.routing.domain import Action, Case, Refused
from yijian.contracts.events import Org
from yijian.jurisdiction import Jurisdiction, OrgKind
from yijian.level import Level

_LEVEL_OF_KIND = {
    OrgKind.VILLAGE: Level.VILLAGE,
    OrgKind.TOWNSHIP: Level.TOWNSHIP,
    OrgKind.COUNTY: Level.COUNTY,
}


def org_ref(jurisdiction: Jurisdiction, code: str) -> Org | None:
    """The org as events carry it; None for a grid or an unknown code (not an actor)."""
    org = jurisdiction.get(code)
    if org is None or org.kind not in _LEVEL_OF_KIND:
        return None
    return Org(code=org.code, name=org.name, level=_LEVEL_OF_KIND[org.kind])


def authorize(
    jurisdiction: Jurisdiction,
    actor: Org,
    case: Case,
    action: Action,
    target: Org | None = None,
) -> None:
    """Raise Refused(403) unless ``actor`` may take ``action`` on ``case``."""
    if not jurisdiction.contains(actor.code, case.assignee.code):
        raise Refused(403, f"{actor.name} has no jurisdiction over this complaint")
    if action == Action.RETURN and actor.code != case.assignee.code:
        raise Refused(403, "only the org the complaint is assigned to can return it")
    if action == Action.DISPATCH:
        if target is None:
            raise Refused(409, "dispatch needs a target org")
        if not jurisdiction.contains(actor.code, target.code) or target.code == actor.code:
            raise Refused(403, f"{actor.name} cannot dispatch to {target.name}")
