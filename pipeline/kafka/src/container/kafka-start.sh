#!/bin/sh
# The entry point of the atenex/kafka image: kafka-start PROPERTIES CLUSTER_ID [JVM OPTION...]
# Formats the KRaft log directory PROPERTIES names (once: a formatted one is kept, with its cluster
# id), then runs the broker in the foreground. The test harness writes PROPERTIES and the log4j
# configuration into a host directory bind-mounted at the same path (atenex_kafka::broker::Layout).
set -eu
if [ $# -lt 2 ]; then
  echo "usage: kafka-start PROPERTIES CLUSTER_ID [JVM OPTION...]" >&2
  exit 2
fi
props=$1
cluster_id=$2
shift 2
# `=`: a cluster id starting with `-` must not read as an option.
java "$@" -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format --ignore-formatted \
  --cluster-id="$cluster_id" -c "$props"
exec java "$@" -cp '/opt/kafka/libs/*' kafka.Kafka "$props"
