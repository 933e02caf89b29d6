#!/usr/bin/env bash
# Installs Berth on this host from a source checkout:
#
#   sudo ./deploy/install.sh control-plane   # the control plane
#   sudo ./deploy/install.sh agent           # an agent (needs Docker)
#   sudo ./deploy/install.sh all             # both, on one host
#
# Builds release binaries, installs them to /usr/local/bin, example configs
# to /etc/berth (existing files are kept), systemd units, then enables and
# starts the services.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-all}
case "$what" in
    control-plane|agent|all) ;;
    *) echo "usage: $0 control-plane|agent|all" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (it writes /usr/local/bin, /etc and systemd units)" >&2
    exit 1
fi

components=()
[ "$what" != agent ] && components+=(control-plane)
[ "$what" != control-plane ] && components+=(agent)

if [[ " ${components[*]} " == *" agent "* ]] && ! docker info >/dev/null 2>&1; then
    echo "install.sh: the agent needs a running Docker Engine (e.g. apt-get install docker.io)" >&2
    exit 1
fi

packages=()
for c in "${components[@]}"; do packages+=(-p "berth-$c"); done
cargo build --release "${packages[@]}"

install -d /etc/berth
for c in "${components[@]}"; do
    install -m 0755 "target/release/berth-$c" "/usr/local/bin/berth-$c"
    if [ ! -e "/etc/berth/$c.toml" ]; then
        install -m 0644 "deploy/$c.toml" "/etc/berth/$c.toml"
    else
        echo "install.sh: keeping the existing /etc/berth/$c.toml"
    fi
    install -m 0644 "deploy/berth-$c.service" "/etc/systemd/system/berth-$c.service"
done
# Credentials and a join token for the control plane, ready to be switched on
# in control-plane.toml (credentials-file, agent-token-file); kept if present.
random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
if [[ " ${components[*]} " == *" control-plane "* ]]; then
    umask 077
    if [ ! -e /etc/berth/credentials.toml ]; then
        printf '[[credentials]]\naccess_key_id = "BERTHADMIN"\nsecret_access_key = "%s"\nname = "admin"\n' \
            "$(random_hex 20)" > /etc/berth/credentials.toml
        echo "install.sh: wrote /etc/berth/credentials.toml (access key BERTHADMIN; the secret is in the file)"
    fi
    if [ ! -e /etc/berth/agent-token ]; then
        random_hex 32 > /etc/berth/agent-token
        echo "install.sh: wrote /etc/berth/agent-token (copy it to each agent host)"
    fi
    umask 022
fi
systemctl daemon-reload
for c in "${components[@]}"; do
    systemctl enable --now "berth-$c.service"
    echo "install.sh: berth-$c is $(systemctl is-active "berth-$c.service")"
done
