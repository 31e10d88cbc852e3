#!/usr/bin/env bash
# Installs what the real infrastructure needs (idempotent, non-interactive):
# PostgreSQL and Redis from Debian packages; Kafka and Cassandra jars from Maven Central.
source "$(dirname "$0")/lib.sh"

missing=()
[ -n "$(pg_bin)" ] || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# copy_jars NAME PROPERTY VERSION: runtime jars of infra/NAME/pom.xml into var/infra/jars/NAME.
copy_jars() {
  local name=$1 property=$2 version=$3 dir="$JARS/$1"
  if [ -f "$dir/.version" ] && [ "$(cat "$dir/.version")" = "$version" ]; then return 0; fi
  log "downloading $name $version jars from Maven Central"
  rm -rf "$dir"
  mvn -q -B -f "$INFRA_DIR/$name/pom.xml" "-D$property=$version" dependency:copy-dependencies \
    -DincludeScope=runtime "-DoutputDirectory=$dir"
  echo "$version" >"$dir/.version"
}
copy_jars kafka kafka.version "$KAFKA_VERSION" &
kafka_job=$!
copy_jars cassandra cassandra.version "$CASSANDRA_VERSION" &
cassandra_job=$!
wait "$kafka_job"
wait "$cassandra_job"
log "installed: PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}'), Redis $(redis-server --version | awk '{print $3}' | cut -d= -f2), Kafka $KAFKA_VERSION, Cassandra $CASSANDRA_VERSION"
