#!/usr/bin/env bash
# Make sure a container engine answers before labs or tests need one.
#
# Order: an engine that already answers (DOCKER_HOST, the default socket, a
# rootless Podman socket) is used as it is. Only when none answers and we run
# as root on Debian/Ubuntu do we install docker.io and start dockerd in the
# background -- never a second daemon. Everywhere else we stop with the fix.
set -euo pipefail

log=${CAREOPS_DOCKERD_LOG:-/var/log/careops-dockerd.log}
say() { printf 'careops: %s\n' "$*" >&2; }

engine_answers() {
  if [ -n "${DOCKER_HOST:-}" ]; then
    docker info >/dev/null 2>&1
    return
  fi
  for sock in /var/run/docker.sock "${XDG_RUNTIME_DIR:-/nonexistent}/podman/podman.sock" /run/podman/podman.sock; do
    if [ -S "$sock" ] && DOCKER_HOST="unix://$sock" docker info >/dev/null 2>&1; then
      return 0
    fi
  done
  return 1
}

# The default bridge's interface gone from under a running engine (something on the host removed docker0):
# every container on the default network then fails to start. Say so; restart the daemon this script started.
bridge_lost() {
  command -v ip >/dev/null 2>&1 || return 1
  [ "$(docker network inspect bridge --format '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null)" = docker0 ] || return 1
  ! ip link show docker0 >/dev/null 2>&1
}

if command -v docker >/dev/null 2>&1 && engine_answers; then
  if [ -z "${DOCKER_HOST:-}" ] && bridge_lost; then
    if [ "$(id -u)" = 0 ] && [ -f "$log" ] && pgrep -x dockerd >/dev/null 2>&1; then
      say "the engine's default bridge docker0 is gone (containers on it cannot start): restarting dockerd ..."
      pkill -x dockerd || true
      for _ in $(seq 1 30); do pgrep -x dockerd >/dev/null 2>&1 || break; sleep 1; done
    else
      say "the engine's default bridge docker0 is gone: containers on the default network cannot start."
      say "fix: restart the Docker daemon (sudo systemctl restart docker)."
      exit 1
    fi
  else
    exit 0
  fi
fi

if [ "$(id -u)" != 0 ]; then
  if [ -S /var/run/docker.sock ] && ! [ -r /var/run/docker.sock -a -w /var/run/docker.sock ]; then
    say "the Docker socket /var/run/docker.sock exists but you may not use it."
    say "fix: sudo usermod -aG docker \"${USER:-$(id -un)}\" and log in again (or use rootless Podman: systemctl --user enable --now podman.socket)."
  else
    say "no container engine answers (tried DOCKER_HOST, /var/run/docker.sock, the Podman sockets)."
    say "fix: install and start Docker Engine (https://docs.docker.com/engine/install/) or Podman with its socket"
    say "     (systemctl --user enable --now podman.socket; export DOCKER_HOST=unix://\$XDG_RUNTIME_DIR/podman/podman.sock),"
    say "     on macOS/Windows start Docker Desktop (WSL2 backend on Windows); then run make again."
  fi
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "no container engine answers and this is not a Debian/Ubuntu host, so it cannot be installed for you."
    say "fix: install Docker Engine or Podman with your distribution's packages, start it, and run make again."
    exit 1
  fi
  say "installing docker.io (Debian package) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q docker.io >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q docker.io >/dev/null; } || {
    say "apt-get install docker.io failed; fix: run 'apt-get update && apt-get install docker.io' and read its error."
    exit 1
  }
fi

# Never a second daemon: a dockerd that runs but does not answer yet gets time, not a twin.
if ! pgrep -x dockerd >/dev/null 2>&1; then
  say "starting dockerd in the background (log: $log) ..."
  rm -f /var/run/docker.pid
  nohup dockerd >"$log" 2>&1 &
fi
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    say "Docker engine is up."
    exit 0
  fi
  sleep 1
done
say "dockerd did not answer within 60 s. Its last log lines:"
tail -n 20 "$log" >&2 || true
say "fix: read $log (a common cause: no permission to create iptables rules inside a container host)."
exit 1
