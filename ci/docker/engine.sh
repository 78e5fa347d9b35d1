# Sourced by ci/test: a Docker engine for the container tests (docs/testing.md, "Kafka in a container").
#
# Uses an engine that already answers (DOCKER_HOST, or the default socket); else installs Debian's
# docker.io and debootstrap when missing and starts dockerd itself:
#   - data under the cache directory ($cache/docker), sockets under /run/atenex-docker;
#   - no bridge, no iptables rules: containers use the host's network, and every server in them
#     listens on 127.0.0.1 (--ip=127.0.0.1 also binds any published port to loopback);
#   - no registry is ever asked: images are built here (pipeline/kafka/src/container/image.rs).
# Sets DOCKER_HOST and docker_ok=1, or docker_ok=0 and docker_why (the reason, printed by ci/test).
# A dockerd started here is stopped by docker_down (ci/test's exit trap).

docker_ok=0
docker_why=""
docker_started_pid=""
docker_run_dir=/run/atenex-docker

docker_answers() { timeout 20 docker info >/dev/null 2>&1; }

docker_up() {
  local cache="$1"
  if command -v docker >/dev/null && docker_answers; then
    docker_ok=1
    return
  fi
  if [ -S "$docker_run_dir/docker.sock" ] && command -v docker >/dev/null \
     && DOCKER_HOST="unix://$docker_run_dir/docker.sock" docker_answers; then
    export DOCKER_HOST="unix://$docker_run_dir/docker.sock"
    docker_ok=1
    return
  fi
  if [ "$(id -u)" -ne 0 ]; then
    docker_why="not root: dockerd and debootstrap need root (run ci/test as root, or point DOCKER_HOST at an engine)"
    return
  fi
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  if [ ${#need[@]} -gt 0 ]; then
    printf '\n== installing %s\n' "${need[*]}"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
           --no-install-recommends "${need[@]}" >/dev/null; }; then
      docker_why="apt-get install ${need[*]} failed"
      return
    fi
  fi
  mkdir -p "$cache/docker" "$docker_run_dir"
  local log="$cache/dockerd.log"
  printf '\n== starting dockerd (data %s, log %s)\n' "$cache/docker" "$log"
  dockerd --data-root "$cache/docker" --exec-root "$docker_run_dir/exec" \
    -H "unix://$docker_run_dir/docker.sock" --pidfile "$docker_run_dir/dockerd.pid" \
    --bridge=none --iptables=false --ip6tables=false --ip=127.0.0.1 \
    >"$log" 2>&1 &
  docker_started_pid=$!
  export DOCKER_HOST="unix://$docker_run_dir/docker.sock"
  for _ in $(seq 1 60); do
    if docker_answers; then
      docker_ok=1
      echo "dockerd $(docker version --format '{{.Server.Version}}') answers at $DOCKER_HOST"
      return
    fi
    if ! kill -0 "$docker_started_pid" 2>/dev/null; then break; fi
    sleep 0.5
  done
  docker_why="dockerd did not come up; last lines of $log: $(tail -n 5 "$log" | tr '\n' ' ')"
  docker_down
  unset DOCKER_HOST
}

docker_down() {
  if [ -n "$docker_started_pid" ] && kill -0 "$docker_started_pid" 2>/dev/null; then
    kill -TERM "$docker_started_pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
      kill -0 "$docker_started_pid" 2>/dev/null || break
      sleep 0.5
    done
  fi
  docker_started_pid=""
}

# Fails if anything in the engine came from a registry (an image with a repository digest) or if a
# container broker outlived its test process.
docker_check_clean() {
  local pulled left
  pulled="$(docker images --digests --format '{{.Repository}}:{{.Tag}} {{.Digest}}' | grep -v ' <none>$' || true)"
  left="$(docker ps -aq --filter label=org.atenex.kafka-owner)"
  if [ -n "$pulled" ]; then
    echo "images with a registry digest (pulled, not built here): $pulled" >&2
    return 1
  fi
  if [ -n "$left" ]; then
    echo "container brokers left behind by the tests: $left" >&2
    return 1
  fi
  echo "engine clean: images $(docker images --format '{{.Repository}}:{{.Tag}}' | tr '\n' ' ')(none pulled), no container left"
}
