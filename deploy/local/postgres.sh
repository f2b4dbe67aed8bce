#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on a loopback port, for development and the test suite,
# from the operating system's PostgreSQL binaries (Debian: the postgresql package).
#
#   deploy/local/postgres.sh start    initdb if new, start, create yijian's databases,
#                                     print the URL prefix (…://USER@HOST:PORT/)
#   deploy/local/postgres.sh stop     stop it (fast shutdown: sessions end, data stays)
#   deploy/local/postgres.sh status   say whether it runs (exit 0) or not (exit 3)
#
# Settings (environment):
#   PG_DIR       the cluster's folder: data/, log/, port                  (default: var/pg)
#   PG_HOST      listening address, loopback only                         (default: 127.0.0.1)
#   PG_PORT      port; unset picks a free one and remembers it in PG_DIR/port
#   PG_USER      the database superuser the URL names                     (default: yijian)
#   PG_OS_USER   when run as root: the unprivileged account the server runs as
#                (default: postgres if it exists, else nobody) — initdb refuses root
#   PG_BIN       folder with initdb and pg_ctl      (default: the newest /usr/lib/postgresql/*/bin)
#   PG_STOP_WITH_PID  shut the server down (immediately) when this process ends: a test session
#                that is killed must not leave a server behind
#   PG_STOP_MODE how `stop` shuts down: fast (default: a clean checkpoint) or immediate (no
#                checkpoint, crash recovery on the next start: for clusters thrown away anyway)
#
# Anyone on this machine may connect without a password (trust on loopback only): it is for
# development and tests, never for real data. Progress goes to stderr; `start` prints the
# URL prefix alone on stdout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PG_DIR=${PG_DIR:-$ROOT/var/pg}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_USER=${PG_USER:-yijian}
DATABASES=(yijian_intake yijian_routing yijian_escalation yijian_notify yijian_eventlog)

say() { echo "postgres: $*" >&2; }
die() {
  echo "postgres: $*" >&2
  exit 1
}

case $PG_HOST in
127.* | localhost | ::1) ;;
*) die "PG_HOST must be a loopback address (this cluster trusts every local connection)" ;;
esac

find_bin() {
  if [[ -n ${PG_BIN:-} ]]; then
    [[ -x $PG_BIN/initdb ]] || die "PG_BIN=$PG_BIN holds no initdb"
    return 0
  fi
  local candidate
  candidate=$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -1 || true)
  if [[ -n $candidate ]]; then
    PG_BIN=$(dirname "$candidate")
  elif command -v initdb >/dev/null; then
    PG_BIN=$(dirname "$(command -v initdb)")
  else
    die "PostgreSQL is missing (Debian: apt-get install postgresql; or run deploy/local/prerequisites.sh)"
  fi
}

# initdb and the server refuse to run as root: as root, run them as an unprivileged account.
AS=()
choose_account() {
  if [[ $(id -u) -ne 0 ]]; then
    return 0
  fi
  local account=${PG_OS_USER:-}
  if [[ -z $account ]]; then
    if id postgres >/dev/null 2>&1; then account=postgres; else account=nobody; fi
  fi
  id "$account" >/dev/null 2>&1 || die "PG_OS_USER=$account is not an account on this machine"
  [[ $(id -u "$account") -ne 0 ]] || die "PG_OS_USER must not be root"
  local runuser
  runuser=$(command -v runuser || command -v /usr/sbin/runuser || command -v /sbin/runuser) ||
    die "runuser (util-linux) is needed to run PostgreSQL as $account"
  AS=("$runuser" -u "$account" --)
  OS_ACCOUNT=$account
}

as_owner() { "${AS[@]}" "$@"; }

free_port() {
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$PG_HOST"
}

port_of() {
  if [[ -n ${PG_PORT:-} ]]; then
    echo "$PG_PORT"
  elif [[ -f $PG_DIR/port ]]; then
    cat "$PG_DIR/port"
  else
    free_port
  fi
}

url_prefix() { echo "postgresql+asyncpg://$PG_USER@$PG_HOST:$1/"; }

is_running() { [[ -f $PG_DIR/data/postmaster.pid ]] && as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; }

# A detached watcher: when process $1 is gone, send signal $3 to $2 (then KILL after 30 s).
stop_with() {
  setsid bash -c '
    while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
    kill -0 "$2" 2>/dev/null || exit 0
    kill -"$3" "$2"
    for _ in $(seq 300); do kill -0 "$2" 2>/dev/null || exit 0; sleep 0.1; done
    kill -KILL "$2"' stop-with "$1" "$2" "$3" </dev/null >/dev/null 2>&1 &
}

start() {
  find_bin
  choose_account
  mkdir -p "$PG_DIR"
  PG_DIR=$(cd "$PG_DIR" && pwd)
  if ((${#AS[@]})); then
    chown "$OS_ACCOUNT" "$PG_DIR"
    as_owner test -w "$PG_DIR" ||
      die "$OS_ACCOUNT (the account PostgreSQL runs as) cannot reach $PG_DIR: let it through the parent folders (chmod o+x) or choose another PG_DIR"
  fi
  local port
  port=$(port_of)
  if is_running; then
    say "already running on $PG_HOST:$port (data in $PG_DIR/data)"
    url_prefix "$port"
    return 0
  fi
  if [[ ! -f $PG_DIR/data/PG_VERSION ]]; then
    say "creating a new cluster in $PG_DIR/data ($("$PG_BIN/postgres" --version))"
    as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_USER" -E UTF8 --locale=C.UTF-8 \
      --auth=trust >"$PG_DIR/initdb.log" 2>&1 ||
      die "initdb failed; see $PG_DIR/initdb.log"
    # Only loopback connections, and those without a password (a throwaway cluster).
    as_owner tee "$PG_DIR/data/pg_hba.conf" >/dev/null <<EOF
# Generated by deploy/local/postgres.sh: trust, but only from this machine.
host all all 127.0.0.1/32 trust
host all all ::1/128 trust
EOF
  fi
  as_owner mkdir -p "$PG_DIR/log"
  echo "$port" | as_owner tee "$PG_DIR/port" >/dev/null
  say "starting PostgreSQL on $PG_HOST:$port (log in $PG_DIR/log/postgres.log)"
  # No Unix socket: its path would have to be short and writable; TCP on loopback is enough.
  as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log/postgres.log" -w -t 60 \
    -o "-c listen_addresses=$PG_HOST -c port=$port -c unix_socket_directories='' -c fsync=on -c max_connections=200" \
    start >/dev/null ||
    {
      tail -n 20 "$PG_DIR/log/postgres.log" >&2 || true
      die "the server did not start; see $PG_DIR/log/postgres.log"
    }
  if [[ -n ${PG_STOP_WITH_PID:-} ]]; then
    local postmaster
    postmaster=$(as_owner head -n 1 "$PG_DIR/data/postmaster.pid")
    stop_with "$PG_STOP_WITH_PID" "$postmaster" QUIT # QUIT: PostgreSQL's immediate shutdown
  fi
  local db
  for db in "${DATABASES[@]}"; do
    if [[ -z $("$PG_BIN/psql" -h "$PG_HOST" -p "$port" -U "$PG_USER" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
      say "creating database $db"
      "$PG_BIN/createdb" -h "$PG_HOST" -p "$port" -U "$PG_USER" "$db"
    fi
  done
  say "ready: databases ${DATABASES[*]}"
  url_prefix "$port"
}

stop() {
  find_bin
  choose_account
  if [[ ! -d $PG_DIR/data ]] || ! is_running; then
    say "not running"
    return 0
  fi
  say "stopping PostgreSQL (data in $PG_DIR/data)"
  local mode=${PG_STOP_MODE:-fast}
  [[ $mode == fast || $mode == immediate ]] || die "PG_STOP_MODE must be fast or immediate"
  as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m "$mode" -w -t 60 stop >/dev/null ||
    die "pg_ctl stop failed; see $PG_DIR/log/postgres.log"
  say "stopped"
}

status() {
  find_bin
  choose_account
  if [[ -d $PG_DIR/data ]] && is_running; then
    say "running on $PG_HOST:$(cat "$PG_DIR/port"), data in $PG_DIR/data"
    url_prefix "$(cat "$PG_DIR/port")"
    return 0
  fi
  say "not running"
  return 3
}

case ${1:-} in
start) start ;;
stop) stop ;;
status) status ;;
*)
  echo "usage: $0 start | stop | status" >&2
  exit 2
  ;;
esac
