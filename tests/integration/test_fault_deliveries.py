"""Deliveries that are not one-each-in-order, in the production shape: every event published
again in reverse, every consumer group replayed from the start, two routing replicas
rebalancing under load, and escalation's clock stepping an hour forward and a minute back.

One set-up serves the module; each test files its own complaints and the checker
(tests/faults/checker.py) counts only those.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from deploy.local.stack import LocalKafka, LocalPostgres
from services.escalation.store import deadlines
from tests.faults.checker import Figures, check, settled
from tests.faults.citizens import VILLAGE, Citizens
from tests.faults.history import Installation, differences
from tests.faults.probes import count, eventually, longer, metric, report, sign_in, until
from tests.faults.production import FaultyProduction, production_on
from tests.integration.production import SERVICES

pytestmark = pytest.mark.integration

VILLAGE_LAPSES = timedelta(hours=2, minutes=1)  # two hours to accept, and a minute more


@pytest.fixture(scope="module")
def production(
    tmp_path_factory: pytest.TempPathFactory,
    local_kafka: LocalKafka,
    local_postgres: LocalPostgres,
) -> Iterator[FaultyProduction]:
    folder = tmp_path_factory.mktemp("deliveries")
    with production_on(folder, bootstrap=local_kafka.bootstrap, postgres=local_postgres) as system:
        yield system


def installation(production: FaultyProduction) -> Installation:
    return Installation(
        bootstrap=production.env["YIJIAN_KAFKA_BOOTSTRAP"],
        prefix=production.env["YIJIAN_KAFKA_TOPIC_PREFIX"],
        databases=production.service_databases,
    )


async def a_history(production: FaultyProduction) -> list[str]:
    """Complaints with every kind of event behind them: assigned, deadlines set, accepted,
    resolved, reminded, escalated (and the deadlines, views and messages those leave)."""
    citizens = Citizens(lambda: production.url("intake"))
    filed = await citizens.file(12)
    assert (await settled(production.service_databases, filed, timeout=120)).lost == 0
    routing = production.url("routing")
    async with httpx.AsyncClient(timeout=15) as client:
        staff = await sign_in(client, routing, VILLAGE)
        for complaint_id in filed[:4]:
            answer = await client.post(
                f"{routing}/api/v1/complaints/{complaint_id}/accept", headers=staff
            )
            assert answer.status_code == 200, answer.text
        for complaint_id in filed[:2]:
            answer = await client.post(
                f"{routing}/api/v1/complaints/{complaint_id}/resolve",
                headers=staff,
                json={"message": "路灯已修好"},
            )
            assert answer.status_code == 200, answer.text
    production.advance(VILLAGE_LAPSES)  # the eight not accepted are reminded, then escalated

    def escalated(figures: Figures) -> bool:
        return figures.lost == 0 and figures.escalated == len(filed) - 4

    figures = await settled(production.service_databases, filed, timeout=120, ready=escalated)
    assert escalated(figures), figures.table()
    return filed


async def test_every_event_published_again_in_reverse_changes_nothing(
    production: FaultyProduction,
) -> None:
    system = installation(production)
    filed = await a_history(production)
    await eventually(system.quiet, "the system at rest", timeout=120)
    before = await system.state()
    events = await system.recorded()
    await system.republish(list(reversed(events)))
    await eventually(system.quiet, "every copy consumed", timeout=120)
    after = await system.state()
    figures = await check(production.service_databases, filed)
    report("every event published again in reverse", figures, events_published_again=len(events))
    assert len(events) > 5 * len(filed)  # the whole history went round again
    assert not differences(before, after)
    assert figures.sound, figures.table()


@longer
async def test_consumer_groups_replayed_from_the_start_change_nothing(
    production: FaultyProduction,
) -> None:
    system = installation(production)
    filed = await a_history(production)
    await eventually(system.quiet, "the system at rest", timeout=120)
    before = await system.state()
    for service in SERVICES:
        production.stop(service)
    try:
        for service in SERVICES:
            await system.rewind(service)
        lag = await system.lag()
    finally:
        for service in SERVICES:
            production.start(service)
    async with httpx.AsyncClient(timeout=15) as client:
        for service in SERVICES:
            await production.wait_ready(client, service)
    await eventually(system.quiet, "every group to read its topics again", timeout=180)
    after = await system.state()
    figures = await check(production.service_databases, filed)
    report("consumer groups replayed from the start", figures, records_replayed=lag)
    assert lag > 5 * len(filed)  # every group was sent back over the whole history
    assert not differences(before, after)
    assert figures.sound, figures.table()


@longer
async def test_two_routing_replicas_rebalance_under_load_and_apply_each_event_once(
    production: FaultyProduction,
) -> None:
    citizens = Citizens(lambda: production.url("intake"))
    citizens.start()

    async def more(number: int, what: str) -> None:
        reached = len(citizens.acknowledged) + number
        await until(lambda: len(citizens.acknowledged) >= reached, what)

    async def applied_by(name: str) -> float:
        return await metric(
            client,
            production.url(name),
            "yijian_events_consumed_total",
            consumer="routing",
            outcome="applied",
        )

    async with httpx.AsyncClient(timeout=15) as client:
        try:
            await more(10, "complaints for one replica")
            production.start("routing", replica="routing-2")  # joins: the group rebalances
            await production.wait_ready(client, "routing-2")
            await more(20, "complaints for two replicas")

            async def second_has_work() -> bool:
                return await applied_by("routing-2") > 0

            await eventually(second_has_work, "the second replica to be given partitions")
            # The first dies without leaving: its partitions wait out its session, then move.
            production.kill("routing")
            await more(20, "complaints while the first replica is dead")
            production.start("routing")
            await production.wait_ready(client, "routing")
            await more(10, "complaints for two replicas again")
            production.stop("routing-2")  # leaves at once: the first takes everything back
            await more(10, "complaints for the first replica alone")
        finally:
            await citizens.stop()
    figures = await settled(production.service_databases, citizens.acknowledged, timeout=180)
    report("two routing replicas rebalancing under load", figures)
    assert figures.sound, figures.table()


async def _fired(production: FaultyProduction, ids: list[str], kind: str) -> int:
    """How many of the village's deadlines of ``kind`` fired for these complaints."""
    query = select(func.count()).where(
        deadlines.c.complaint_id.in_(ids),
        deadlines.c.level == "village",
        deadlines.c.kind == kind,
        deadlines.c.state == "fired",
    )
    return await count(production.service_databases.escalation, query)


async def test_escalation_clock_jumping_forward_and_back_fires_each_deadline_once_never_early(
    production: FaultyProduction,
) -> None:
    databases = production.service_databases

    async def until_fired(ids: list[str], kind: str, what: str) -> None:
        async def all_fired() -> bool:
            return await _fired(production, ids, kind) >= len(ids)

        await eventually(all_fired, what)

    # The village has 2 h to accept and is reminded 30 min before (default policy).
    early = await Citizens(lambda: production.url("intake")).file(8)  # due at t0+2h
    assert (await settled(databases, early, timeout=120)).lost == 0
    production.advance(timedelta(minutes=30))
    later = await Citizens(lambda: production.url("intake")).file(8)  # reminded t0+2h, due 2h30
    assert (await settled(databases, later, timeout=120)).lost == 0
    production.advance(timedelta(minutes=30))  # t0+1h everywhere: nothing due yet
    assert await _fired(production, early + later, "remind") == 0

    production.skew_escalation(timedelta(hours=1))  # escalation alone at t0+2h
    await until_fired(early, "due", "the first eight deadlines, which became due")
    await until_fired(later, "remind", "the second eight's reminders, which became due")

    production.skew_escalation(-timedelta(minutes=1))  # back to t0+1h59m
    # 治安隐患: 1 h to accept, reminded 15 min before, so filed at t0+1h they are reminded at
    # t0+1h45m (due now) and due at t0+2h (a minute ahead of escalation's clock, though its
    # clock has shown t0+2h before). Their reminders firing shows a tick ran after the step.
    security = await Citizens(lambda: production.url("intake"), category="治安隐患").file(8)
    await until_fired(security, "remind", "the reminders due after the step back")
    assert await _fired(production, security, "due") == 0, "a deadline fired early"
    assert await _fired(production, later, "due") == 0, "a deadline fired early"

    production.skew_escalation(timedelta(minutes=1))  # t0+2h
    await until_fired(security, "due", "the deadlines due at t0+2h")
    production.skew_escalation(timedelta(minutes=30))  # t0+2h30m
    await until_fired(later, "due", "the deadlines due at t0+2h30m")
    production.align_clocks()  # one clock again, for whatever runs next

    everyone = early + later + security

    def escalated(figures: Figures) -> bool:
        return figures.lost == 0 and figures.escalated == len(everyone)

    figures = await settled(databases, everyone, timeout=120, ready=escalated)
    report("escalation clock an hour forward and a minute back", figures)
    # Each village deadline fired once; the levels above fired as their own clocks said
    # (the 治安隐患 ones climb to the county meanwhile), none twice.
    for kind in ("remind", "due"):
        assert await _fired(production, everyone, kind) == len(everyone), kind
    assert figures.escalated == len(everyone), figures.table()
    assert figures.sound, figures.table()
