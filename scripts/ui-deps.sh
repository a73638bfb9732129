#!/usr/bin/env bash
# Installs what building and browser-testing the UI needs, when missing:
# Node.js 20+ and npm (apt), the UI's npm packages (npm ci, from the
# lockfile), and with --browser Debian's Chromium, which playwright-core
# drives (it never downloads a browser of its own). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_install() {
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "ui-deps: installing Node.js and npm (apt)"
  apt_install nodejs npm
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "ui-deps: Node.js $(node -v) is too old: Vite and playwright-core need 20 or newer" >&2
  echo "         (Debian 13 and Ubuntu 24.10+ ship it; on Debian 12 or Ubuntu 24.04 install it first)" >&2
  exit 1
fi
if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  echo "ui-deps: npm ci (web/)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ "${1:-}" = "--browser" ] && [ ! -x "${ZIPQ_TEST_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "ui-deps: installing Chromium (apt)"
  apt_install chromium
fi
