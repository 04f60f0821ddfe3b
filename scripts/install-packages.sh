#!/usr/bin/env bash
# Installs the Debian packages the tests (or a make target) need, when missing:
#   scripts/install-packages.sh python3-pymodbus postgresql ...
# Uses apt-get as root, or through sudo.
set -euo pipefail
missing=()
for p in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "install-packages: apt-get not found; please install: ${missing[*]}" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo ">> installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/sanigate-apt.log 2>&1; then
  $SUDO apt-get update -q >/tmp/sanigate-apt.log 2>&1 || true
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}" || { cat /tmp/sanigate-apt.log >&2; exit 1; }
fi
