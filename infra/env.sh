# Connection settings of the local real infrastructure; `source infra/env.sh`.
export PG_URL=postgres://chat:chat@127.0.0.1:15432/chat
export REDIS_URL=redis://127.0.0.1:16379
export KAFKA_BROKERS=127.0.0.1:19092
export CASSANDRA_CONTACT_POINTS=127.0.0.1:19042
export CASSANDRA_LOCAL_DC=datacenter1
export CASSANDRA_KEYSPACE=chat
