#!/usr/bin/env bash
# Stops the real infrastructure (idempotent): infra/down.sh [pg] [redis] [kafka] [cassandra].
source "$(dirname "$0")/lib.sh"

down_pg() {
  if [ -f "$DATA/pg/postmaster.pid" ]; then
    runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$DATA/pg" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    log "pg stopped"
  else
    log "pg is not running"
  fi
}
down_redis() {
  # redis-server rewrites its process title, so it is stopped through its own port, not its pid.
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1; then log "redis stopped"; else log "redis is not running"; fi
  rm -f "$RUN/redis.pid"
}
down_kafka() { stop_pid kafka 30; }
down_cassandra() { stop_pid cassandra 30; }

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cassandra kafka redis pg)
for t in "${targets[@]}"; do
  case "$t" in
    pg | redis | kafka | cassandra) "down_$t" & ;;
    *) log "unknown server '$t'"; exit 2 ;;
  esac
done
wait
