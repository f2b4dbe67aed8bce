#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft: broker and controller in one JVM) on a loopback port,
# for development and the test suite. No distribution tarball: the broker's jars come from
# Maven Central through Maven (deploy/local/kafka/pom.xml) and are cached between runs.
#
#   deploy/local/kafka.sh fetch [-q]   gather the jars into the cache (offline once cached)
#   deploy/local/kafka.sh start        format the storage if new, start, wait, print the address
#   deploy/local/kafka.sh stop         stop gracefully; kill if it will not go
#   deploy/local/kafka.sh status       say whether it runs (exit 0) or not (exit 3)
#
# Settings (environment):
#   KAFKA_VERSION          broker version                      (default: the pom's, 4.4.0)
#   KAFKA_LIBS             where the jars are cached   (default: .cache/kafka/VERSION/libs)
#   KAFKA_DIR              config, data, logs and pid file     (default: var/kafka)
#   KAFKA_HOST             listening address                   (default: 127.0.0.1)
#   KAFKA_PORT             client port                         (default: 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port               (default: KAFKA_PORT + 1)
#   KAFKA_HEAP_OPTS        JVM heap                            (default: -Xms128m -Xmx512m)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker      (default: 90)
#   KAFKA_STOP_WITH_PID    stop the broker when this process ends (a test session that is
#                          killed must not leave a broker behind)
#
# Progress goes to stderr; `start` prints the bootstrap address alone on stdout.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
POM="$HERE/kafka/pom.xml"
DEFAULT_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")
KAFKA_VERSION=${KAFKA_VERSION:-$DEFAULT_VERSION}
KAFKA_LIBS=${KAFKA_LIBS:-$ROOT/.cache/kafka/$KAFKA_VERSION/libs}
KAFKA_DIR=${KAFKA_DIR:-$ROOT/var/kafka}
KAFKA_HOST=${KAFKA_HOST:-127.0.0.1}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
PIDFILE="$KAFKA_DIR/kafka.pid"
QUIET=0

say() { ((QUIET)) || echo "kafka: $*" >&2; }
die() {
  echo "kafka: $*" >&2
  exit 1
}

need() {
  command -v java >/dev/null ||
    die "java is missing: Kafka $KAFKA_VERSION needs Java 17 (Debian: apt-get install openjdk-17-jre-headless; or run deploy/local/prerequisites.sh)"
  local major
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
  [[ -n $major && $major -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17 or newer; java here is version ${major:-unknown}"
}

fetched() { [[ -f "$KAFKA_LIBS/.complete" ]]; }

fetch() {
  if fetched; then
    say "jars for Kafka $KAFKA_VERSION already in $KAFKA_LIBS"
    return 0
  fi
  command -v mvn >/dev/null ||
    die "mvn is missing: it fetches Kafka's jars (Debian: apt-get install maven; or run deploy/local/prerequisites.sh)"
  need
  say "fetching Kafka $KAFKA_VERSION and its dependencies from Maven Central into $KAFKA_LIBS"
  # Into a scratch folder first, so an interrupted fetch never looks like a complete one.
  local scratch="$KAFKA_LIBS.partial.$$"
  rm -rf "$scratch"
  mkdir -p "$scratch"
  # Maven's output goes to a log (and, unless -q, to the terminal as it runs); on failure
  # its end is shown either way.
  local mvn_log="$scratch.log" status=0
  local mvn=(mvn -B -Dstyle.color=never -f "$POM"
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies
    -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime -DoutputDirectory="$scratch")
  if ((QUIET)); then
    "${mvn[@]}" >"$mvn_log" 2>&1 || status=$?
  else
    "${mvn[@]}" 2>&1 | tee "$mvn_log" >&2 || status=$?
  fi
  if ((status != 0)); then
    tail -n 30 "$mvn_log" >&2
    rm -rf "$scratch" "$mvn_log"
    die "Maven could not fetch Kafka $KAFKA_VERSION (is Maven Central reachable?)"
  fi
  rm -f "$mvn_log"
  compgen -G "$scratch/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null ||
    die "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is not in $scratch"
  rm -rf "$KAFKA_LIBS"
  mv "$scratch" "$KAFKA_LIBS"
  touch "$KAFKA_LIBS/.complete"
  say "fetched $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars"
}

running_pid() {
  [[ -f $PIDFILE ]] || return 1
  local pid
  pid=$(<"$PIDFILE")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# What `kafka-storage.sh random-uuid` prints (16 random bytes, URL-safe base64, no padding,
# never starting with "-"), without starting a JVM for it.
random_cluster_id() {
  local id=-
  while [[ $id == -* ]]; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  echo "$id"
}

port_answers() { (exec 3<>"/dev/tcp/$KAFKA_HOST/$KAFKA_PORT") 2>/dev/null; }

write_config() {
  mkdir -p "$KAFKA_DIR/config" "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  cat >"$KAFKA_DIR/config/server.properties" <<EOF
# Generated by deploy/local/kafka.sh: a single KRaft node for development and tests.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
log.dirs=$KAFKA_DIR/data
# One node: every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1
num.partitions=3
# Topics come from deploy/kafka/topics.toml (yijian kafka apply-topics), never by accident.
auto.create.topics.enable=false
unclean.leader.election.enable=false
# Tests start consumer groups all the time: do not wait for more members to join.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=2000
EOF
  cat >"$KAFKA_DIR/config/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn">
  <Appenders>
    <File name="server" fileName="$KAFKA_DIR/logs/server.log">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="server"/></Root>
    <Logger name="org.apache.kafka.raft" level="warn"/>
    <Logger name="kafka.log.LogCleaner" level="warn"/>
    <Logger name="state.change.logger" level="warn"/>
  </Loggers>
</Configuration>
EOF
}

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
  if pid=$(running_pid); then
    say "already running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT"
    echo "$KAFKA_HOST:$KAFKA_PORT"
    return 0
  fi
  need
  fetched || fetch
  if port_answers; then
    die "$KAFKA_HOST:$KAFKA_PORT is taken by another process: set KAFKA_PORT to a free port"
  fi
  write_config
  local classpath="$KAFKA_LIBS/*"
  local java_opts=(-server $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$KAFKA_DIR/config/log4j2.xml")
  if [[ ! -f "$KAFKA_DIR/data/meta.properties" ]]; then
    local cluster_id
    cluster_id=$(random_cluster_id)
    say "formatting a new single-node KRaft storage in $KAFKA_DIR/data (cluster id $cluster_id)"
    java "${java_opts[@]}" -cp "$classpath" kafka.tools.StorageTool format --standalone \
      -t "$cluster_id" -c "$KAFKA_DIR/config/server.properties" >"$KAFKA_DIR/logs/format.log" 2>&1 ||
      die "formatting the storage failed; see $KAFKA_DIR/logs/format.log"
  fi
  say "starting Kafka $KAFKA_VERSION on $KAFKA_HOST:$KAFKA_PORT (logs in $KAFKA_DIR/logs)"
  : >"$KAFKA_DIR/logs/server.log"
  # setsid: the broker must not die with the terminal (or the test) that started it.
  setsid java "${java_opts[@]}" -cp "$classpath" kafka.Kafka "$KAFKA_DIR/config/server.properties" \
    >"$KAFKA_DIR/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local pid=$! waited=0
  [[ -z ${KAFKA_STOP_WITH_PID:-} ]] || stop_with "$KAFKA_STOP_WITH_PID" "$pid" TERM
  # The port opens before the broker serves; its log says when it has really started.
  until port_answers && grep -q "Kafka Server started" "$KAFKA_DIR/logs/server.log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      tail -n 30 "$KAFKA_DIR/logs/server.log" "$KAFKA_DIR/logs/stdout.log" >&2 || true
      die "the broker exited during start-up; logs in $KAFKA_DIR/logs"
    fi
    if ((waited >= KAFKA_START_TIMEOUT * 10)); then
      tail -n 30 "$KAFKA_DIR/logs/server.log" >&2 || true
      stop
      die "the broker did not start within ${KAFKA_START_TIMEOUT}s; logs in $KAFKA_DIR/logs"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  say "ready after $((waited / 10)).$((waited % 10))s (pid $pid)"
  echo "$KAFKA_HOST:$KAFKA_PORT"
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    say "not running"
    rm -f "$PIDFILE"
    return 0
  fi
  say "stopping the broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local waited=0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= 300)); then
      say "still running after 30s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$PIDFILE"
  say "stopped"
}

status() {
  local pid
  if pid=$(running_pid); then
    say "running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT, data in $KAFKA_DIR"
    return 0
  fi
  say "not running"
  return 3
}

command=${1:-}
shift || true
for arg in "$@"; do
  case $arg in
  -q | --quiet) QUIET=1 ;;
  *) die "unknown option $arg" ;;
  esac
done
case $command in
fetch) fetch ;;
start) start ;;
stop) stop ;;
status) status ;;
*)
  echo "usage: $0 fetch [-q] | start | stop | status" >&2
  exit 2
  ;;
esac
