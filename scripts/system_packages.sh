#!/usr/bin/env bash
# The Debian packages the project needs besides Python: the PostgreSQL server (the local and
# test warehouse) and Chromium (the dashboard's browser test). Installs what is missing; run as
# root (CI), or prints the command to run.
set -euo pipefail

need=()
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    need+=(postgresql)
fi
if [ "${1:-}" != "--no-browser" ] && ! command -v chromium >/dev/null 2>&1; then
    need+=(chromium fonts-dejavu-core)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "missing system packages: ${need[*]}" >&2
    echo "install them, e.g. on Debian or Ubuntu: sudo apt-get install ${need[*]}" >&2
    exit 1
fi
echo "installing Debian packages: ${need[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
