#!/usr/bin/env bash
# Starts a single-node Berth cluster on this machine: a control plane and one
# agent, in the foreground. Ctrl-C stops both (task containers keep running,
# as they do when an agent restarts).
#
#   ./deploy/local-cluster.sh
#
# Then, in another shell, use the stock aws CLI against http://127.0.0.1:7080
# (the script prints the exact commands). State lives in ./.berth (override
# with BERTH_LOCAL_DIR); ports with BERTH_HTTP_PORT / BERTH_GRPC_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."

state_dir=${BERTH_LOCAL_DIR:-$PWD/.berth}
http_port=${BERTH_HTTP_PORT:-7080}
grpc_port=${BERTH_GRPC_PORT:-7081}

if ! docker info >/dev/null 2>&1; then
    echo "local-cluster: the Docker Engine is not reachable (is dockerd running, and may this user use /var/run/docker.sock?)" >&2
    exit 1
fi

echo "local-cluster: building the release binaries (the first build takes a few minutes)..." >&2
cargo build --release --quiet -p berth-control-plane -p berth-agent
bin=target/release
mkdir -p "$state_dir"

# An access key and a join token, made once: the cluster is signed like AWS.
random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
(
    umask 077
    [ -e "$state_dir/credentials.toml" ] ||
        printf '[[credentials]]\naccess_key_id = "BERTHLOCAL"\nsecret_access_key = "%s"\nname = "local-cluster"\n' \
            "$(random_hex 20)" >"$state_dir/credentials.toml"
    [ -e "$state_dir/agent-token" ] || random_hex 32 >"$state_dir/agent-token"
)
secret=$(sed -n 's/^secret_access_key = "\(.*\)"$/\1/p' "$state_dir/credentials.toml" | head -n 1)

pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "local-cluster: stopped (logs and state are in $state_dir)" >&2
}
trap cleanup EXIT INT TERM

# Waits for a process to print its ready line on the named pipe.
wait_ready() {
    local fifo=$1 what=$2 line
    if ! read -r -t 60 line <"$fifo"; then
        echo "local-cluster: $what did not start; see $state_dir/$what.log" >&2
        exit 1
    fi
    echo "local-cluster: $line" >&2
}

fifo=$(mktemp -u)
mkfifo "$fifo"
"$bin/berth-control-plane" --data-dir "$state_dir/control-plane" \
    --http-listen "127.0.0.1:$http_port" --grpc-listen "127.0.0.1:$grpc_port" \
    --credentials-file "$state_dir/credentials.toml" --agent-token-file "$state_dir/agent-token" \
    >"$fifo" 2>>"$state_dir/control-plane.log" &
pids+=($!)
wait_ready "$fifo" control-plane
rm -f "$fifo"

mkfifo "$fifo"
"$bin/berth-agent" --control-plane "http://127.0.0.1:$grpc_port" --data-dir "$state_dir/agent" \
    --agent-token-file "$state_dir/agent-token" \
    >"$fifo" 2>>"$state_dir/agent.log" &
pids+=($!)
wait_ready "$fifo" agent
rm -f "$fifo"

cat >&2 <<MSG

Berth is running: control plane on 127.0.0.1:$http_port (ECS API) and 127.0.0.1:$grpc_port (agents),
one agent in cluster "default". Logs: $state_dir/*.log. Ctrl-C stops both.
Metrics, health and readiness: http://127.0.0.1:7082/metrics (control plane),
http://127.0.0.1:7083/metrics (agent); /healthz and /readyz beside them.
Web console: http://127.0.0.1:$http_port/console/ (sign in as BERTHLOCAL with the secret below).

In another shell:
  export AWS_ACCESS_KEY_ID=BERTHLOCAL AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1
  export AWS_ENDPOINT_URL_ECS=http://127.0.0.1:$http_port
  aws ecs list-container-instances
  aws ecs register-task-definition --family hello \\
      --container-definitions '[{"name":"hello","image":"busybox","memory":32,"command":["sh","-c","echo hi; sleep 30"]}]'
  aws ecs run-task --task-definition hello
MSG
wait
