#!/usr/bin/env bash
# `make down`: stop what `make up` started — services first (SIGTERM lets each finish its
# in-flight work and flush its outbox), then Kafka and PostgreSQL. Data stays under var/.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUN_DIR=${YIJIAN_UP_DIR:-$ROOT/var/up}

for service in gateway intake routing escalation notify; do
  pidfile=$RUN_DIR/$service.pid
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    echo "down: stopping $service (pid $pid)" >&2
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "down: $service did not stop in 20 s; killing it" >&2
      kill -KILL "$pid"
    fi
  fi
  rm -f "$pidfile"
done
"$HERE/kafka.sh" stop || true
"$HERE/postgres.sh" stop || true
echo "down: stopped" >&2
