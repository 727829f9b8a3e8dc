#!/usr/bin/env bash
# The grading queue's Redis (careops grade --queue, careops worker): Debian's redis-server.
#
# Installs redis-server when it is missing (as root on Debian/Ubuntu, like the other host tools). Unless
# --install-only is given, makes sure a Redis answers on 127.0.0.1:$CAREOPS_REDIS_PORT (default 6379): one that
# already answers is used as it is; otherwise redis-server starts in the background with its data in
# build/redis/ (append-only file on, so queued tasks and answers survive a restart of Redis).
# Workers on other hosts need the port reachable: bind it to the host's address with CAREOPS_REDIS_BIND and
# set a password (requirepass) in build/redis/redis.conf -- never expose an open Redis.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${CAREOPS_REDIS_PORT:-6379}
bind=${CAREOPS_REDIS_BIND:-127.0.0.1}
dir=${CAREOPS_REDIS_DIR:-$root/build/redis}
say() { printf 'careops: %s\n' "$*" >&2; }

"$root/scripts/ensure-tools.sh" redis-server:redis-server redis-cli:redis-tools
[ "${1:-}" = "--install-only" ] && exit 0

answers() { redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; }
if answers; then
  exit 0
fi
mkdir -p "$dir"
[ -f "$dir/redis.conf" ] || printf '# careops grading queue: add requirepass here before binding beyond loopback\n' >"$dir/redis.conf"
say "starting redis-server on $bind:$port (data and log: $dir) ..."
redis-server "$dir/redis.conf" --bind "$bind" --port "$port" --dir "$dir" --appendonly yes --appendfsync everysec \
  --protected-mode yes --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
for _ in $(seq 1 40); do
  if answers; then
    say "Redis is up: CAREOPS_QUEUE=redis://127.0.0.1:$port/0"
    exit 0
  fi
  sleep 0.5
done
say "redis-server did not answer within 20 s. Its last log lines:"
tail -n 20 "$dir/redis.log" >&2 || true
say "fix: read $dir/redis.log (is port $port taken by another program?)"
exit 1
