"""The ``yijian`` command: run the system, mint staff tokens, handle dead letters."""

from __future__ import annotations

import asyncio
import tempfile
from typing import Annotated

import typer
import uvicorn

from services.embedded import build_system
from services.escalation import store as escalation_store
from services.escalation.app import MIGRATIONS as EscalationMigrations
from services.intake import store as intake_store
from services.intake.app import MIGRATIONS as IntakeMigrations
from services.notify import store as notify_store
from services.notify.app import MIGRATIONS as NotifyMigrations
from services.routing import store as routing_store
from services.routing.app import MIGRATIONS as RoutingMigrations
from yijian.bus.sqllog import MIGRATIONS as EVENTLOG_MIGRATIONS
from yijian.bus.sqllog import SqlEventLog
from yijian.bus.sqllog import metadata as eventlog_metadata
from yijian.db import create_engine
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


@app.command()
def run() -> None:
    """Start all four services in one process (the embedded default)."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    typer.echo(f"yijian: data in {settings.data_dir.resolve()}")
    typer.echo(f"yijian: open http://{settings.host}:{settings.port}/docs for the API")
    typer.echo(f"yijian: listening on http://{settings.host}:{settings.port}  (Ctrl-C stops)")
    uvicorn.run(
        "services.embedded:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=10,
    )


@staff.command("token")
def staff_token(
    org: Annotated[str, typer.Option(help="the org code the user acts for")],
    user: Annotated[str, typer.Option(help="the user's name, for the audit log")] = "staff",
) -> None:
    """Print a bearer token for a member of staff of ORG (development and scripts)."""
    settings = Settings()
    system = build_system(settings)
    if system.jurisdiction.get(org) is None:
        raise typer.BadParameter(
            f"{org} is not an org code in the jurisdiction", param_hint="--org"
        )
    typer.echo(system.routing.tokens.issue(user, org))


@dlq.command("list")
def dlq_list() -> None:
    """List dead letters that have not been replayed."""

    async def main() -> None:
        system = build_system(Settings())
        await system.prepare()
        letters = await system.event_log.dead_letters()
        if not letters:
            typer.echo("no dead letters")
        for letter in letters:
            typer.echo(
                f"#{letter.id}  {letter.group}  {letter.envelope.type}  "
                f"key={letter.envelope.key}  attempts={letter.attempts}  {letter.error}"
            )
        await system.close()

    asyncio.run(main())


@dlq.command("replay")
def dlq_replay(dead_letter_id: int) -> None:
    """Put a dead letter back on its topic, after the cause was fixed."""

    async def main() -> bool:
        system = build_system(Settings())
        await system.prepare()
        replayed = await system.event_log.replay_dead_letter(dead_letter_id)
        await system.close()
        return replayed

    if not asyncio.run(main()):
        typer.echo(f"no unreplayed dead letter #{dead_letter_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"replayed #{dead_letter_id}")


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
        service_app = create_service_app(service, settings)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="SERVICE") from error
    typer.echo(f"yijian {service}: listening on http://{settings.host}:{port}")
    uvicorn.run(
        service_app,
        host=settings.host,
        port=port,
        log_level=settings.log_level.lower(),
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
    uvicorn.run(front, host=settings.host, port=settings.port, log_level="warning")


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
