#!/usr/bin/env bash
# Starts the real infrastructure on 127.0.0.1 (idempotent) and waits until each server answers:
#   infra/up.sh [pg] [redis] [kafka] [cassandra]      (no argument: all four)
# Kafka and Cassandra start in parallel. A server that does not come up fails with its log tail.
source "$(dirname "$0")/lib.sh"

fill() { sed -e "s|@DIR@|$3|g" -e "s|@PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
  -e "s|@STORAGE_PORT@|$CASSANDRA_STORAGE_PORT|g" -e "s|@NATIVE_PORT@|$CASSANDRA_PORT|g" "$1" >"$2"; }

pg_ready() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
up_pg() {
  local dir="$DATA/pg" bin; bin=$(pg_bin)
  if pg_ready; then log "postgresql already up on $PG_PORT"; return; fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir" && chown postgres:postgres "$dir" && chmod 700 "$dir"
    # PostgreSQL runs as the postgres user (it refuses root), which must be able to reach the folder.
    local up="$dir"
    while up=$(dirname "$up") && [ "$up" != / ]; do
      runuser -u postgres -- test -x "$up" || { log "granting the postgres user passage through $up (chmod o+x)"; chmod o+x "$up"; }
    done
    runuser -u postgres -- "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >>"$LOGS/pg.log" 2>&1
  fi
  chown postgres:postgres "$LOGS" 2>/dev/null || true
  touch "$LOGS/pg.log" && chown postgres:postgres "$LOGS/pg.log"
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir" -l "$LOGS/pg.log" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k /tmp -c fsync=off -c max_connections=200" start >/dev/null
  wait_for pg 60 pg_ready
  "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -q -d postgres >/dev/null <<'SQL'
SELECT 'CREATE ROLE chat LOGIN PASSWORD ''chat''' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chat')\gexec
SELECT 'CREATE DATABASE chat OWNER chat' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'chat')\gexec
SQL
  log "postgresql up on 127.0.0.1:$PG_PORT"
}

redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }
up_redis() {
  if redis_ready; then log "redis already up on $REDIS_PORT"; return; fi
  mkdir -p "$DATA/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --pidfile "$RUN/redis.pid" \
    --dir "$DATA/redis" --logfile "$LOGS/redis.log" --save "" --appendonly no >/dev/null
  wait_for redis 30 redis_ready
  log "redis up on 127.0.0.1:$REDIS_PORT"
}

kafka_ready() { port_open "$KAFKA_PORT" && grep -q "Kafka Server started" "$LOGS/kafka.log"; }
up_kafka() {
  if live_pid kafka >/dev/null && kafka_ready; then log "kafka already up on $KAFKA_PORT"; return; fi
  local dir="$DATA/kafka" conf="$CONF/kafka.properties" cp="$JARS/kafka/*"
  fill "$INFRA_DIR/kafka/server.properties.in" "$conf" "$dir"
  if [ ! -f "$dir/meta.properties" ]; then
    mkdir -p "$dir"
    java -cp "$cp" kafka.tools.StorageTool format -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)" \
      -c "$conf" >>"$LOGS/kafka.log" 2>&1
  fi
  : >"$LOGS/kafka.log.start" && mv "$LOGS/kafka.log.start" "$LOGS/kafka.log"
  start_java kafka -Xms256m -Xmx768m -XX:+UseG1GC "-Dlog4j.configuration=file:$INFRA_DIR/kafka/log4j.properties" \
    "-Dkafka.logs.dir=$LOGS" -cp "$cp" kafka.Kafka "$conf"
  wait_for kafka 90 kafka_ready
  log "kafka $KAFKA_VERSION up on 127.0.0.1:$KAFKA_PORT"
}

cassandra_ready() { port_open "$CASSANDRA_PORT" && grep -q "Starting listening for CQL clients" "$LOGS/cassandra.log"; }
up_cassandra() {
  if live_pid cassandra >/dev/null && cassandra_ready; then log "cassandra already up on $CASSANDRA_PORT"; return; fi
  local dir="$DATA/cassandra" conf="$CONF/cassandra.yaml"
  mkdir -p "$dir"
  fill "$INFRA_DIR/cassandra/cassandra.yaml.in" "$conf" "$dir"
  mapfile -t jvm < <(grep -v '^\s*#' "$INFRA_DIR/cassandra/jvm17.options" | grep -v '^\s*$')
  : >"$LOGS/cassandra.log"
  start_java cassandra -Xms1g -Xmx1g "${jvm[@]}" \
    "-javaagent:$(ls "$JARS"/cassandra/jamm-*.jar | head -1)" \
    -Dcassandra-foreground=yes "-Dcassandra.config=file://$conf" "-Dcassandra.storagedir=$dir" \
    "-Dcassandra.logdir=$LOGS" "-Dlogback.configurationFile=$INFRA_DIR/cassandra/logback.xml" \
    -Dcassandra.jmx.local.port="$CASSANDRA_JMX_PORT" -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    -Dcassandra.ring_delay_ms=100 -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.auto_bootstrap=false \
    -cp "$JARS/cassandra/*" org.apache.cassandra.service.CassandraDaemon
  wait_for cassandra 180 cassandra_ready
  log "cassandra $CASSANDRA_VERSION up on 127.0.0.1:$CASSANDRA_PORT"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pg redis kafka cassandra)
# Each server starts in its own subshell, run as a plain command: under `( ... ) || handler` bash
# would ignore set -e inside it, and a server that never answered would still be logged as up.
pids=() names=()
for t in "${targets[@]}"; do
  case "$t" in
    pg | redis | kafka | cassandra) ("up_$t") & pids+=($!) names+=("$t") ;;
    *) log "unknown server '$t' (expected: pg redis kafka cassandra)"; exit 2 ;;
  esac
done
status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { log "${names[$i]} failed to start (its log: $LOGS/${names[$i]}.log)"; status=1; }
done
exit $status
