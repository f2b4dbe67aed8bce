"""The ``yijian`` command: run the system, mint staff tokens, handle dead letters."""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import typer
import uvicorn
from aiokafka.errors import KafkaError

from services.embedded import build_system
from services.escalation import store as escalation_store
from services.escalation.app import MIGRATIONS as EscalationMigrations
from services.intake import store as intake_store
from services.intake.app import MIGRATIONS as IntakeMigrations
from services.notify import store as notify_store
from services.notify.app import MIGRATIONS as NotifyMigrations
from services.routing import store as routing_store
from services.routing.app import MIGRATIONS as RoutingMigrations
from services.routing.audit_chain import Verdict, verify_database
from services.routing.users import (
    DEMO_PASSWORD,
    USERNAME_PATTERN,
    AccountError,
    Role,
    StaffAccount,
    StaffDirectory,
)
from services.simulator.command import simulate
from yijian.bus.kafka import KafkaEventLog
from yijian.bus.kafka.admin import TopicAdmin
from yijian.bus.protocol import DeadLetterStore
from yijian.bus.sqllog import MIGRATIONS as EVENTLOG_MIGRATIONS
from yijian.bus.sqllog import SqlEventLog
from yijian.bus.sqllog import metadata as eventlog_metadata
from yijian.bus.topics import CatalogError, load_catalog
from yijian.clock import SystemClock
from yijian.db import create_engine
from yijian.jurisdiction import Jurisdiction
from yijian.logs import configure_logging
from yijian.migrate import migrate, new_revision
from yijian.settings import Settings

app = typer.Typer(help="yijian 一键: citizens' complaints, answered in time.", no_args_is_help=True)
staff = typer.Typer(help="Staff accounts and tokens.", no_args_is_help=True)
dlq = typer.Typer(help="Dead letters: events a consumer gave up on.", no_args_is_help=True)
app.add_typer(staff, name="staff")
db = typer.Typer(help="Schema migrations.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")
app.add_typer(db, name="db")
kafka = typer.Typer(help="The Kafka cluster of the production transport.", no_args_is_help=True)
app.add_typer(kafka, name="kafka")
audit = typer.Typer(help="The staff audit log.", no_args_is_help=True)
app.add_typer(audit, name="audit")
app.command()(simulate)


@app.command()
def run() -> None:
    """Start all four services in one process (the embedded default)."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    typer.echo(f"yijian: data in {settings.data_dir.resolve()}")
    typer.echo(f"yijian: open http://{settings.host}:{settings.port}/docs for the API")
    if settings.demo_users:
        typer.echo(
            f"yijian: DEMO staff users on: sign in at http://{settings.host}:{settings.port}"
            f"/staff as 620922100001 (a village) with {DEMO_PASSWORD}"
        )
    typer.echo(f"yijian: listening on http://{settings.host}:{settings.port}  (Ctrl-C stops)")
    uvicorn.run(
        "services.embedded:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # uvicorn's access log would write each caller's address and every query string
        # (a lookup's phone number) to the log; requests are counted in /metrics instead.
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@staff.command("token")
def staff_token(
    org: Annotated[str, typer.Option(help="the org code the user acts for")],
    user: Annotated[str, typer.Option(help="the user's name, for the audit log")] = "staff",
    role: Annotated[Role, typer.Option(help="staff, supervisor or admin")] = Role.STAFF,
) -> None:
    """Print a bearer token for a member of staff of ORG (development and scripts)."""
    settings = Settings()
    system = build_system(settings)
    if system.jurisdiction.get(org) is None:
        raise typer.BadParameter(
            f"{org} is not an org code in the jurisdiction", param_hint="--org"
        )
    typer.echo(system.routing.tokens.issue(user, org, role.value))


@asynccontextmanager
async def _staff_directory(settings: Settings) -> AsyncIterator[StaffDirectory]:
    """Routing's staff accounts, without starting the system."""
    engine = create_engine(settings.database_url("routing"))
    try:
        await migrate(engine, routing_store.metadata, RoutingMigrations)
        yield StaffDirectory(engine, SystemClock(), Jurisdiction.load())
    finally:
        await engine.dispose()


def _read_password() -> str:
    """Prompt twice on a terminal; otherwise read one line from stdin (for scripts)."""
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@staff.command("add-user")
def staff_add_user(
    org: Annotated[str, typer.Option(help="the org code the user works for")],
    username: Annotated[str, typer.Option(help="what they sign in with")],
    role: Annotated[Role, typer.Option(help="staff, supervisor (sees contacts) or admin")],
    name: Annotated[str | None, typer.Option(help="display name, e.g. 张三")] = None,
    temporary: Annotated[
        bool, typer.Option("--temporary/--permanent", help="must change it at first sign-in")
    ] = True,
) -> None:
    """Create a workbench account; the password is prompted for, or read from stdin."""
    if not re.match(USERNAME_PATTERN, username):
        raise typer.BadParameter("2-64 letters, digits or . _ @ -", param_hint="--username")
    password = _read_password()

    async def main() -> None:
        async with _staff_directory(Settings()) as directory:
            account = await directory.add(
                username,
                org,
                role,
                password,
                display_name=name,
                must_change_password=temporary,
            )
        typer.echo(f"added {account.username} ({account.role.value}) for {account.org_code}")

    try:
        asyncio.run(main())
    except AccountError as error:
        typer.echo(f"refused: {error}", err=True)
        raise typer.Exit(1) from error


@staff.command("list")
def staff_list() -> None:
    """List workbench accounts."""

    async def main() -> list[StaffAccount]:
        async with _staff_directory(Settings()) as directory:
            return await directory.all()

    accounts = asyncio.run(main())
    if not accounts:
        typer.echo("no staff accounts")
    for account in accounts:
        flags = [
            flag
            for flag, on in (
                ("disabled", account.disabled),
                ("must-change-password", account.must_change_password),
            )
            if on
        ]
        typer.echo(
            f"{account.username}\t{account.display_name}\t{account.org_code}\t"
            f"{account.role.value}\t{','.join(flags) or '-'}"
        )


@staff.command("disable")
def staff_disable(
    username: str,
    undo: Annotated[bool, typer.Option("--undo", help="enable the account again")] = False,
) -> None:
    """Disable an account (its sessions end at once), or enable it again with --undo."""

    async def main() -> bool:
        async with _staff_directory(Settings()) as directory:
            return await directory.set_disabled(username, not undo)

    if not asyncio.run(main()):
        typer.echo(f"no account {username!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{username} {'enabled' if undo else 'disabled'}")


@audit.command("verify")
def audit_verify(
    head: Annotated[
        str | None,
        typer.Option(help="a head hash an earlier verify printed: it must still be in the chain"),
    ] = None,
) -> None:
    """Walk the audit log's hash chain; exit 1 naming the first changed, inserted or deleted
    row. Keep the printed head somewhere else to catch rows later removed from the end."""

    async def main() -> Verdict:
        engine = create_engine(Settings().database_url("routing"))
        try:
            await migrate(engine, routing_store.metadata, RoutingMigrations)
            return await verify_database(engine, head)
        finally:
            await engine.dispose()

    verdict = asyncio.run(main())
    if not verdict.intact:
        typer.echo(f"audit chain BROKEN (checked {verdict.rows} rows): {verdict.problem}", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit chain intact: {verdict.rows} rows, head {verdict.head}")


@dlq.command("list")
def dlq_list() -> None:
    """List dead letters that have not been replayed."""

    async def main() -> None:
        async with _dead_letter_store(Settings()) as store:
            letters = await store.dead_letters()
        if not letters:
            typer.echo("no dead letters")
        for letter in letters:
            typer.echo(
                f"#{letter.id}  {letter.group}  {letter.topic}  {letter.envelope.type}  "
                f"key={letter.envelope.key}  attempts={letter.attempts}  {letter.error}"
            )

    asyncio.run(main())


@dlq.command("replay")
def dlq_replay(dead_letter_id: int) -> None:
    """Put a dead letter back on its topic, after the cause was fixed."""

    async def main() -> bool:
        async with _dead_letter_store(Settings()) as store:
            return await store.replay_dead_letter(dead_letter_id)

    if not asyncio.run(main()):
        typer.echo(f"no unreplayed dead letter #{dead_letter_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"replayed #{dead_letter_id}")


@asynccontextmanager
async def _dead_letter_store(settings: Settings) -> AsyncIterator[DeadLetterStore]:
    """The dead letters of the transport ``YIJIAN_BUS`` names, without starting any service."""
    if settings.bus == "kafka":
        kafka_log = KafkaEventLog.from_settings(settings, role="operator")
        try:
            yield kafka_log
        finally:
            await kafka_log.close()
        return
    engine = create_engine(settings.database_url("eventlog"))
    await migrate(engine, eventlog_metadata, EVENTLOG_MIGRATIONS)
    sql_log = SqlEventLog(engine, SystemClock())
    try:
        yield sql_log
    finally:
        await sql_log.close()


@kafka.command("apply-topics")
def kafka_apply_topics(
    profile: Annotated[
        str | None,
        typer.Option(
            help="production (3 replicas, min.insync 2) or local (one broker); "
            "default YIJIAN_KAFKA_TOPIC_PROFILE"
        ),
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option(help="host:port of a broker; default YIJIAN_KAFKA_BOOTSTRAP")
    ] = None,
) -> None:
    """Create the catalog's topics (deploy/kafka/topics.toml), or bring them up to it."""
    settings = Settings()
    try:
        catalog = load_catalog(
            settings.kafka_topic_catalog, profile or settings.kafka_topic_profile
        )
    except CatalogError as error:
        raise typer.BadParameter(str(error), param_hint="--profile") from error
    address = bootstrap or settings.kafka_bootstrap

    async def main() -> list[str]:
        async with TopicAdmin(
            address,
            client_id=f"{settings.kafka_client_id}-admin",
            request_timeout_ms=settings.kafka_request_timeout_ms,
            prefix=settings.kafka_topic_prefix,
        ) as admin:
            return await admin.apply(catalog)

    typer.echo(f"==> applying {len(catalog.topics)} topics to Kafka at {address}")
    try:
        changes = asyncio.run(main())
    except (KafkaError, TimeoutError) as error:
        typer.echo(f"cannot apply the topics at {address}: {error}", err=True)
        raise typer.Exit(1) from error
    for change in changes:
        typer.echo(f"    {change}")
    if not changes:
        typer.echo("    every topic already matches the catalog")


@db.command("revision")
def db_revision(
    database: Annotated[
        str, typer.Argument(help="intake, routing, escalation, notify or eventlog")
    ],
    message: Annotated[str, typer.Option("-m", "--message", help="what changed")],
) -> None:
    """Write a migration for table changes in one database (developers)."""
    targets = {
        "intake": (intake_store.metadata, IntakeMigrations),
        "routing": (routing_store.metadata, RoutingMigrations),
        "escalation": (escalation_store.metadata, EscalationMigrations),
        "notify": (notify_store.metadata, NotifyMigrations),
        "eventlog": (eventlog_metadata, EVENTLOG_MIGRATIONS),
    }
    if database not in targets:
        raise typer.BadParameter(f"choose one of {', '.join(targets)}", param_hint="DATABASE")
    metadata, versions = targets[database]

    async def main() -> None:
        with tempfile.TemporaryDirectory() as scratch:
            engine = create_engine(f"sqlite+aiosqlite:///{scratch}/{database}.db")
            await new_revision(engine, metadata, versions, message)
            await engine.dispose()

    asyncio.run(main())


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="intake, routing, escalation or notify")],
    port: Annotated[int, typer.Option(help="the port this service listens on")],
) -> None:
    """Run one service in its own process (production; see `make up`)."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    from services.process import create_service_app

    try:
        service_app = create_service_app(service, settings, settle_heap=True)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="SERVICE") from error
    typer.echo(f"yijian {service}: listening on http://{settings.host}:{port}")
    uvicorn.run(
        service_app,
        host=settings.host,
        port=port,
        log_level=settings.log_level.lower(),
        # uvicorn's access log would write each caller's address and every query string
        # (a lookup's phone number) to the log; requests are counted in /metrics instead.
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def gateway() -> None:
    """Serve the public address in front of separately running services (`make up`)."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    from services.gateway import create_gateway

    try:
        front = create_gateway(settings)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(f"yijian gateway: listening on http://{settings.host}:{settings.port}")
    uvicorn.run(
        front, host=settings.host, port=settings.port, log_level="warning", access_log=False
    )


@db.command("upgrade")
def db_upgrade(
    database: Annotated[str, typer.Argument(help="a service name, eventlog, or all")] = "all",
) -> None:
    """Apply migrations now (deploy jobs); services also do it when they start."""

    async def main() -> None:
        settings = Settings()
        system = build_system(settings)
        chosen = [s for s in system.runtime.services if database in {"all", s.name}]
        if not chosen and database not in {"all", "eventlog"}:
            raise typer.BadParameter(f"no database {database!r}", param_hint="DATABASE")
        if database in {"all", "eventlog"} and isinstance(system.event_log, SqlEventLog):
            typer.echo("==> migrating eventlog")
            await migrate(system.event_log.engine, eventlog_metadata, EVENTLOG_MIGRATIONS)
        for service in chosen:
            typer.echo(f"==> migrating {service.name}")
            await service.prepare()
        await system.close()

    asyncio.run(main())
