"""Stopping and starting the session's PostgreSQL in place (same folder, port and data).

``LocalPostgres.stop`` also deletes the cluster, which is right at the end of a session and
wrong in the middle of one; Kafka's ``LocalKafka.stop``/``start`` already keep their data.
"""

from __future__ import annotations

from deploy.local.stack import POSTGRES_SH, LocalPostgres, run_script


def stop_postgres(postgres: LocalPostgres) -> None:
    """Stop the server as a crash would (``PG_STOP_MODE`` immediate): sessions cut at once."""
    run_script("stopping PostgreSQL", [str(POSTGRES_SH), "stop"], postgres.env, timeout=120)


def start_postgres(postgres: LocalPostgres) -> None:
    run_script("starting PostgreSQL", [str(POSTGRES_SH), "start"], postgres.env, timeout=120)
