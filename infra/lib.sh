# Shared helpers of the infra scripts: paths, pid files, waiting for readiness, log tails.
# Sourced, not run. Everything lives under <project>/var/infra and binds to 127.0.0.1 only.
set -euo pipefail

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$INFRA_DIR")"
VAR="$ROOT/var/infra"
JARS="$VAR/jars"
DATA="$VAR/data"
LOGS="$VAR/logs"
RUN="$VAR/run"
CONF="$VAR/conf"
mkdir -p "$JARS" "$DATA" "$LOGS" "$RUN" "$CONF"

KAFKA_VERSION=3.9.2
CASSANDRA_VERSION=5.0.9
PG_PORT=15432
REDIS_PORT=16379
KAFKA_PORT=19092
KAFKA_CONTROLLER_PORT=19093
CASSANDRA_PORT=19042
CASSANDRA_STORAGE_PORT=17000
CASSANDRA_JMX_PORT=17199

log() { printf '[infra] %s\n' "$*"; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The pid in var/infra/run/$1.pid, if that process is alive and is ours (its command line names our var folder).
live_pid() {
  local file="$RUN/$1.pid" pid
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$VAR" && { echo "$pid"; return 0; }
  return 1
}

# wait_for NAME SECONDS CHECK...: runs CHECK until it succeeds; when the server's process exits
# first, or on timeout, prints why and the log tail and fails.
wait_for() {
  local name=$1 seconds=$2 why=""; shift 2
  local deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    if [ -f "$RUN/$name.pid" ] && ! live_pid "$name" >/dev/null; then why="exited before it was ready"
    elif [ "$(date +%s)" -ge "$deadline" ]; then why="did not become ready within ${seconds}s"; fi
    if [ -n "$why" ]; then
      log "$name $why; last lines of $LOGS/$name.log:"
      tail -n 60 "$LOGS/$name.log" 2>/dev/null || true
      return 1
    fi
    sleep 1
  done
}

# stop_pid NAME SECONDS: SIGTERM, then SIGKILL after the bound; removes the pid file.
stop_pid() {
  local name=$1 seconds=$2 pid
  if pid=$(live_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq "$seconds"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in ${seconds}s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
    log "$name stopped"
  else
    log "$name is not running"
  fi
  rm -f "$RUN/$name.pid"
}

# The timer slack (ns) Kafka and Cassandra run with; every thread inherits it. Cassandra's shared
# executor pool spin-parks idle workers in ~10 us sleeps for up to 10 ms after each task (work is
# handed to them with an explicit unpark, so those sleeps' length costs no latency); Linux's default
# 50 us slack makes that thousands of futex calls a second, which a small host pays for in CPU.
# With 1 ms, Cassandra's CPU per request fell about threefold here (infra/README.md).
JAVA_TIMER_SLACK_NS=${JAVA_TIMER_SLACK_NS:-1000000}

# start_java NAME JAVA_ARGS...: a JVM in the background with JAVA_TIMER_SLACK_NS (set on the shell
# that then becomes the JVM), its pid in var/infra/run/NAME.pid. The shell writes the pid file
# itself, once its command line names our var folder: written by this side with $!, the file could
# name a process still between fork and exec, whose command line is this script's, and wait_for
# took it for a server that had exited (a CI run failed so, with an empty Kafka log).
start_java() {
  local name=$1 file="$RUN/$1.pid"; shift
  rm -f "$file"
  setsid nohup bash -c 'echo "$0" >/proc/self/timerslack_ns 2>/dev/null || true
    echo $$ >"$1.tmp" && mv "$1.tmp" "$1"; shift; exec java "$@"' "$JAVA_TIMER_SLACK_NS" "$file" "$@" \
    >>"$LOGS/$name.log" 2>&1 </dev/null &
}
