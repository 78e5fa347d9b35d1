#!/usr/bin/env bash
# Installs Apache Kafka on the EMR master node in KRaft mode, starts it under systemd and creates
# Atenex's topics (docs/deploy.md, step 1).
#
#   sudo deploy/emr/install-kafka.sh                  install, start, create the topics
#   deploy/emr/install-kafka.sh --config-only DIR     only write DIR/server.properties
#                                                     (what pipeline/cli/tests/deploy.rs starts)
#
# Why no ZooKeeper: Kafka 4.0 removed ZooKeeper mode. The cluster's metadata lives in Kafka's own
# Raft quorum of controllers (KRaft). On one node the same process is broker and controller, so
# there is nothing else to install, start or keep in step.
#
# Needs: Java 17+ (EMR 7: `sudo dnf install -y java-17-amazon-corretto-headless`), outbound HTTPS
# to the Apache archive (or ATENEX_KAFKA_MIRROR pointing at a copy, e.g. in S3 through
# `aws s3 cp`), and /usr/local/bin/atenex installed (step 2) for the topics.
#
# Settings (environment; defaults in brackets). None starts with KAFKA_: atenex reads KAFKA_*
# variables as librdkafka properties, and this script runs `atenex topics create`.
#   ATENEX_KAFKA_VERSION        [4.4.0, the version the tests run]
#   ATENEX_KAFKA_MIRROR         [https://archive.apache.org/dist/kafka]
#   ATENEX_KAFKA_HOME           [/opt/kafka]
#   ATENEX_KAFKA_DATA           [/var/lib/kafka]  the log directory
#   ATENEX_KAFKA_LISTEN_HOST    [0.0.0.0]  the client listener; the security group decides who
#                                          reaches it (9092 from the EC2 host's group only)
#   ATENEX_KAFKA_ADVERTISED_HOST [the node's private IP]  what clients are told to connect to
#   ATENEX_KAFKA_PORT           [9092]
#   ATENEX_KAFKA_CONTROLLER_PORT [9093]  the controller listener, on loopback only
#   ATENEX_KAFKA_HEAP           [1g]
#   ATENEX_TOPIC_PARTITIONS     [3]  read by `atenex topics create` itself
set -euo pipefail

version=${ATENEX_KAFKA_VERSION:-4.4.0}
scala=2.13
mirror=${ATENEX_KAFKA_MIRROR:-https://archive.apache.org/dist/kafka}
home=${ATENEX_KAFKA_HOME:-/opt/kafka}
data=${ATENEX_KAFKA_DATA:-/var/lib/kafka}
listen_host=${ATENEX_KAFKA_LISTEN_HOST:-0.0.0.0}
port=${ATENEX_KAFKA_PORT:-9092}
controller_port=${ATENEX_KAFKA_CONTROLLER_PORT:-9093}
heap=${ATENEX_KAFKA_HEAP:-1g}

die() {
    echo "install-kafka: $*" >&2
    exit 1
}

advertised_host() {
    if [[ -n ${ATENEX_KAFKA_ADVERTISED_HOST:-} ]]; then
        echo "$ATENEX_KAFKA_ADVERTISED_HOST"
        return
    fi
    local ip
    ip=$(hostname -I 2>/dev/null | awk '{print $1}')
    [[ -n $ip ]] || die "cannot find this node's private IP: set ATENEX_KAFKA_ADVERTISED_HOST"
    echo "$ip"
}

# The broker's configuration: one node, broker and controller in one process.
server_properties() {
    cat <<EOF
# Written by deploy/emr/install-kafka.sh: single-node KRaft (no ZooKeeper), broker and controller
# in one process.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${controller_port}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://${listen_host}:${port},CONTROLLER://127.0.0.1:${controller_port}
advertised.listeners=PLAINTEXT://$(advertised_host):${port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=${data}
# One node: nothing can be replicated. The analytics job's transactions and the consumer groups'
# offsets need these internal topics at replication 1.
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Topics are created below, with their partitions; a typo in a topic name must not create one.
auto.create.topics.enable=false
# The seed's retention (Kafka's default, 7 days): the landing job copies everything to HDFS.
log.retention.hours=168
EOF
}

if [[ ${1:-} == --config-only ]]; then
    [[ -n ${2:-} ]] || die "--config-only needs a directory"
    mkdir -p "$2"
    server_properties >"$2/server.properties"
    exit 0
fi
[[ $# -eq 0 ]] || die "unknown arguments: $* (see the top of this script)"
[[ $(id -u) -eq 0 ]] || die "run as root (sudo): it installs under $home and a systemd unit"
command -v java >/dev/null || die "no java: install Java 17+ (EMR 7: dnf install -y java-17-amazon-corretto-headless)"
java_major=$(java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print v[1]; exit}')
[[ ${java_major:-0} -ge 17 ]] || die "Kafka $version needs Java 17+, found ${java_major:-none}"
[[ -x /usr/local/bin/atenex ]] || die "/usr/local/bin/atenex is not installed (docs/deploy.md, step 2)"

# 1. The release, checked against its published SHA-512.
name=kafka_${scala}-${version}
if [[ ! -d $home-$version ]]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    curl -fsSL -o "$tmp/$name.tgz" "$mirror/$version/$name.tgz"
    curl -fsSL -o "$tmp/$name.tgz.sha512" "$mirror/$version/$name.tgz.sha512"
    # The .sha512 file is "name.tgz: HEX HEX ..." over one or more lines.
    want=$(tr -d ' \n\r' <"$tmp/$name.tgz.sha512" | cut -d: -f2 | tr 'A-F' 'a-f')
    got=$(sha512sum "$tmp/$name.tgz" | cut -d' ' -f1)
    [[ $want == "$got" ]] || die "$name.tgz does not match its SHA-512: not installed"
    mkdir -p "$home-$version"
    tar -xzf "$tmp/$name.tgz" -C "$home-$version" --strip-components=1
fi
ln -sfn "$home-$version" "$home"

# 2. A user, the log directory, the configuration, the storage formatted once.
id kafka >/dev/null 2>&1 || useradd --system --home "$data" --shell /usr/sbin/nologin kafka
install -d -o kafka -g kafka "$data"
server_properties >"$home/config/atenex-server.properties"
if [[ ! -f $data/meta.properties ]]; then
    cluster_id=$("$home/bin/kafka-storage.sh" random-uuid)
    sudo -u kafka "$home/bin/kafka-storage.sh" format --ignore-formatted \
        -t "$cluster_id" -c "$home/config/atenex-server.properties"
fi

# 3. systemd keeps it running.
cat >/etc/systemd/system/kafka.service <<EOF
[Unit]
Description=Apache Kafka $version (KRaft, broker and controller) for Atenex
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User=kafka
Group=kafka
Environment=KAFKA_HEAP_OPTS=-Xmx$heap -Xms$heap
ExecStart=$home/bin/kafka-server-start.sh $home/config/atenex-server.properties
Restart=on-failure
RestartSec=5
LimitNOFILE=100000
TimeoutStopSec=120

[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable --now kafka

# 4. The topics, once the broker answers.
for _ in $(seq 120); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 1
done
/usr/local/bin/atenex topics create --bootstrap-servers "127.0.0.1:$port"
echo "Kafka $version is running (systemctl status kafka); clients use $(advertised_host):$port"
