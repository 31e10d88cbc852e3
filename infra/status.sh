#!/usr/bin/env bash
# One line per server: up or down.
source "$(dirname "$0")/lib.sh"
for s in pg:$PG_PORT redis:$REDIS_PORT kafka:$KAFKA_PORT cassandra:$CASSANDRA_PORT; do
  name=${s%%:*} port=${s##*:}
  if port_open "$port"; then echo "$name up 127.0.0.1:$port"; else echo "$name down"; fi
done
