#!/usr/bin/env bash
# `make up`: the production shape on this machine. PostgreSQL and Kafka (started by the
# scripts beside this one), the topics, then intake, routing, escalation and notify as four
# processes, each with its own database and port, and the gateway on the public address.
# YIJIAN_* settings given to `make up` reach every service. `make down` stops all of it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUN_DIR=${YIJIAN_UP_DIR:-$ROOT/var/up}
BIN=$ROOT/.venv/bin
export PORT=${PORT:-8000}
export YIJIAN_HOST=${YIJIAN_HOST:-127.0.0.1}
SERVICES=(intake routing escalation notify)

say() { echo "up: $*" >&2; }
die() { echo "up: $*" >&2; exit 1; }

[[ -x $BIN/yijian ]] || die "no virtual environment: run through \`make up\`, which installs it"
mkdir -p "$RUN_DIR"
for service in "${SERVICES[@]}" gateway; do
  if [[ -f $RUN_DIR/$service.pid ]] && kill -0 "$(cat "$RUN_DIR/$service.pid")" 2>/dev/null; then
    die "$service is already running (pid $(cat "$RUN_DIR/$service.pid")); \`make down\` first"
  fi
done

say "starting PostgreSQL"
pg_prefix=$("$HERE/postgres.sh" start)
say "starting Kafka"
bootstrap=$("$HERE/kafka.sh" start)

export YIJIAN_BUS=kafka
export YIJIAN_KAFKA_BOOTSTRAP=$bootstrap
export YIJIAN_KAFKA_TOPIC_PROFILE=${YIJIAN_KAFKA_TOPIC_PROFILE:-local}
say "creating topics on $bootstrap"
"$BIN/yijian" kafka apply-topics >&2

port=$PORT
for service in "${SERVICES[@]}"; do
  port=$((port + 1))
  upper=${service^^}
  export "YIJIAN_${upper}_DATABASE_URL=${pg_prefix}yijian_${service}"
  export "YIJIAN_${upper}_URL=http://$YIJIAN_HOST:$port"
done

port=$PORT
for service in "${SERVICES[@]}"; do
  port=$((port + 1))
  say "starting $service on port $port (log: $RUN_DIR/$service.log)"
  nohup "$BIN/yijian" serve "$service" --port "$port" >"$RUN_DIR/$service.log" 2>&1 &
  echo $! >"$RUN_DIR/$service.pid"
done
say "starting the gateway on port $PORT"
nohup "$BIN/yijian" gateway >"$RUN_DIR/gateway.log" 2>&1 &
echo $! >"$RUN_DIR/gateway.pid"

# Wait for readiness, not for time: each check is bounded, the whole wait too.
deadline=$((SECONDS + ${YIJIAN_UP_TIMEOUT:-90}))
check() { "$BIN/python" -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1" 2>/dev/null; }
port=$PORT
for service in "${SERVICES[@]}" gateway; do
  if [[ $service == gateway ]]; then url="http://$YIJIAN_HOST:$PORT/readyz"; else port=$((port + 1)); url="http://$YIJIAN_HOST:$port/readyz"; fi
  until check "$url"; do
    kill -0 "$(cat "$RUN_DIR/$service.pid")" 2>/dev/null || die "$service exited; see $RUN_DIR/$service.log"
    ((SECONDS < deadline)) || die "$service is not ready at $url; see $RUN_DIR/$service.log"
    sleep 0.5
  done
done

port=$PORT
echo "yijian is up:"
echo "  public API   http://$YIJIAN_HOST:$PORT   (gateway)"
for service in "${SERVICES[@]}"; do
  port=$((port + 1))
  echo "  $service$(printf '%*s' $((11 - ${#service})) '')http://$YIJIAN_HOST:$port   (/metrics, /readyz)"
done
echo "  PostgreSQL   ${pg_prefix}"
echo "  Kafka        $bootstrap"
echo "stop everything with: make down"
