#!/usr/bin/env bash
# Install the host tools a target needs when they are missing.
# Usage: ensure-tools.sh COMMAND:DEBIAN_PACKAGE ...
# As root on Debian/Ubuntu, missing ones are installed with apt-get (once).
# Elsewhere, we stop and name the package to install.
set -euo pipefail
say() { printf 'careops: %s\n' "$*" >&2; }

missing_cmds=() missing_pkgs=()
for pair in "$@"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  case "$cmd" in
    python3-venv) python3 -c 'import venv, ensurepip' >/dev/null 2>&1 && continue ;;
    *) command -v "$cmd" >/dev/null 2>&1 && continue ;;
  esac
  missing_cmds+=("$cmd") missing_pkgs+=("$pkg")
done
[ ${#missing_pkgs[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing ${missing_pkgs[*]} (Debian packages) ..."
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends "${missing_pkgs[@]}" >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 || true
    apt-get install -y -q --no-install-recommends "${missing_pkgs[@]}" >/dev/null || {
      say "apt-get could not install ${missing_pkgs[*]}; run 'apt-get install ${missing_pkgs[*]}' to see why."
      exit 1
    }
  fi
  exit 0
fi
say "missing: ${missing_cmds[*]}."
say "fix: install the packages ${missing_pkgs[*]} (Debian/Ubuntu names; on other systems their equivalents) and run make again."
exit 1
