"""Who may act on a case: staff act only inside their own jurisdiction."""

from __future__ import annotations

from services.routing import domain
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
    """Raise Refused unless ``actor`` may take ``action`` on ``case``."""
    if not jurisdiction.contains(actor.code, case.assignee.code):
        # Outside one's jurisdiction a complaint is answered as if it did not exist, as the
        # case view answers: a 403 here would tell an id-guesser which ids are real.
        raise Refused(404, "no complaint with this id")
    if action == Action.RETURN and actor.code != case.assignee.code:
        raise Refused(403, "only the org the complaint is assigned to can return it")
    if action == Action.DISPATCH:
        if target is None:
            raise Refused(409, "dispatch needs a target org")
        if not jurisdiction.contains(actor.code, target.code) or target.code == actor.code:
            raise Refused(403, f"{actor.name} cannot dispatch to {target.name}")


STAFF_ACTIONS = (
    Action.ACCEPT,
    Action.REPLY,
    Action.RESOLVE,
    Action.RETURN,
    Action.DISPATCH,
    Action.VISIT,
    Action.CLOSE,
)


def below(jurisdiction: Jurisdiction, org_code: str) -> list[str]:
    """The townships and villages under an org: the assignees it can supervise."""
    org = jurisdiction.get(org_code)
    if org is None:
        return []
    if org.kind == OrgKind.COUNTY:
        return [t.code for t in jurisdiction.townships()] + [
            v.code for v in jurisdiction.villages()
        ]
    if org.kind == OrgKind.TOWNSHIP:
        return [v.code for v in jurisdiction.villages(org.code)]
    return []


def available_actions(jurisdiction: Jurisdiction, actor: Org, case: Case) -> list[str]:
    """The buttons to offer: actions the state machine and the access rules both allow."""
    offered = []
    for action in STAFF_ACTIONS:
        if case.status not in domain.ALLOWED[action]:
            continue
        if action == Action.VISIT and case.visited:
            continue
        if action == Action.CLOSE and not case.visited:
            continue
        if action == Action.DISPATCH:
            # authorize() checks one chosen target; here any allowed target will do.
            if not jurisdiction.contains(actor.code, case.assignee.code):
                continue
            if not dispatch_targets(jurisdiction, actor, case):
                continue
        else:
            try:
                authorize(jurisdiction, actor, case, action)
            except Refused:
                continue
        offered.append(action.value)
    return offered


def dispatch_targets(jurisdiction: Jurisdiction, actor: Org, case: Case) -> list[Org]:
    """Townships and villages below the actor that the case may be sent down to."""
    ceiling = case.accountable.level.rank
    targets = []
    for code in below(jurisdiction, actor.code):
        org = org_ref(jurisdiction, code)
        if org is not None and org.level.rank <= ceiling and org.code != case.assignee.code:
            targets.append(org)
    return targets
