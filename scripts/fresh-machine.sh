#!/usr/bin/env bash
# Proves the README's set-up path on a machine where neither PostgreSQL nor
# RabbitMQ exists: a throwaway Debian 12 root (mmdebstrap), run in its own
# network, PID, mount and UTS namespaces so its services get their own
# 127.0.0.1:5432/5672 and never touch this machine's. Its apt source is a
# local file repository of the packages services.sh installs (downloaded
# once into a cache), so the run needs no network inside the namespace.
#
# The root has what the README asks of a machine (Go, make) and nothing
# else: no Node.js, no PostgreSQL, no RabbitMQ. Go is this machine's
# toolchain and module cache, mounted read-only (the namespace has no
# network); the UI's npm packages are fetched here first into web/.deps
# (web/build -fetch-only), as `make run` would fetch them.
#
# Scenarios, each on a new root:
#   root:  `make run` as root from nothing — services installed and started,
#          the UI bundled, zipq built, migrated and serving — then the UI's
#          page and script, a span POSTed and read back, services.sh again
#          (must only check), and the span queue checked to be a quorum queue.
#   sudo:  a first run that stopped half way (PostgreSQL installed and
#          started, no password set: what the old script left behind), then
#          services.sh as a sudo user, which must repair it, then `make run`
#          as that user, serving the UI and storing a span.
# Needs root (namespaces, chroot). `make test-fresh` runs it; so does CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine: needs root (namespaces and chroot)" >&2; exit 1; }

CACHE=${ZIPQ_FRESH_CACHE:-/var/tmp/zipq-fresh-cache}
WORK=$(mktemp -d /var/tmp/zipq-fresh.XXXXXX)
cleanup() {
  for m in $(grep -o " $WORK/[^ ]*" /proc/self/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

command -v mmdebstrap >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
}

# The base root, with the packages services.sh will install kept in /debs as
# a trusted local repository; rebuilt when older than a week.
base=$CACHE/bookworm-make.tar
if [ ! -s "$base" ] || [ -n "$(find "$base" -mtime +7)" ]; then
  echo "fresh-machine: building a Debian 12 root (mmdebstrap) into $base"
  mkdir -p "$CACHE"
  mmdebstrap --quiet --variant=apt --include=ca-certificates,sudo,iproute2,procps,curl,apt-utils,make \
    --customize-hook='mkdir -p "$1/debs/partial"' \
    --customize-hook='chroot "$1" apt-get install -y -qq --download-only -o Dir::Cache::archives=/debs postgresql rabbitmq-server >/dev/null' \
    --customize-hook='chroot "$1" sh -c "cd /debs && rm -rf partial lock && apt-ftparchive packages . > Packages"' \
    --customize-hook='rm -f "$1"/etc/apt/sources.list.d/*; echo "deb [trusted=yes] file:/debs ./" > "$1/etc/apt/sources.list"' \
    bookworm "$CACHE/building.tar" http://deb.debian.org/debian
  mv "$CACHE/building.tar" "$base"
fi

echo "fresh-machine: fetching the UI's npm packages and Go modules (the roots have no network)"
go run ./web/build -fetch-only
go mod download
GOROOT_HOST=$(go env GOROOT)
GOMODCACHE_HOST=$(go env GOMODCACHE)
# One Go build cache for both roots, so the second scenario builds warm.
mkdir -p "$WORK/gocache"

# run_root NAME SCRIPT: a new root from the base, the repo's tracked files in
# /src, then SCRIPT run by bash inside the namespaces.
run_root() {
  local name=$1 script=$2 r="$WORK/$1"
  mkdir -p "$r"
  tar -xf "$base" -C "$r"
  mkdir -p "$r/src" "$r/usr/local/go" "$r/gomod" "$r/gocache"
  git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$r/src"
  cp -r web/.deps "$r/src/web/.deps"
  echo "127.0.0.1 localhost zipqfresh" >"$r/etc/hosts"
  echo "fresh-machine: scenario $name"
  unshare --net --pid --fork --mount --uts --propagation private bash -euo pipefail -c '
    r=$1
    hostname zipqfresh
    ip link set lo up
    mount -t proc proc "$r/proc"
    mount -t sysfs sys "$r/sys"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs tmpfs "$r/run"
    mount -t tmpfs tmpfs "$r/tmp"
    mount --bind -o ro "$3" "$r/usr/local/go"
    mount --bind -o ro "$4" "$r/gomod"
    mount --bind "$5" "$r/gocache"
    chroot "$r" /usr/bin/env -i PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
      GOMODCACHE=/gomod GOCACHE=/gocache GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local GOTELEMETRY=off \
      bash -euo pipefail -c "$2"
  ' _ "$r" "$script" "$GOROOT_HOST" "$GOMODCACHE_HOST" "$WORK/gocache"
}

# Checks shared by both scenarios, run inside the root. serve_check starts
# `make run` (as the user given, in the background), waits for zipq, and
# checks the UI, ingest and reads through it.
PRELUDE='check() { echo "  check: $1"; }
serve_check() {
  check "no Node.js on this machine"
  if command -v node; then echo "node is installed: the scenario would not prove make run needs Go alone"; exit 1; fi
  check "make run as $1: services, UI bundle, build, migrate, serve"
  setsid runuser -u "$1" -- env PATH="$PATH" HOME="$(getent passwd "$1" | cut -d: -f6)" GOMODCACHE=/gomod GOCACHE=/gocache \
    GOPROXY=off GOFLAGS=-mod=mod GOTOOLCHAIN=local GOTELEMETRY=off make -C /src run >/tmp/run.log 2>&1 &
  runpid=$!
  for _ in $(seq 1 600); do curl -fsS http://127.0.0.1:9411/health >/dev/null 2>&1 && break; kill -0 $runpid 2>/dev/null || break; sleep 1; done
  curl -fsS http://127.0.0.1:9411/health || { cat /tmp/run.log; exit 1; }
  echo
  check "the UI page and its script are served"
  page=$(curl -fsS http://127.0.0.1:9411/)
  script=$(printf %s "$page" | grep -o "/assets/main-[A-Za-z0-9]*\.js")
  curl -fsS "http://127.0.0.1:9411$script" | grep "zipq" >/dev/null || { echo "script $script: not the UI"; exit 1; }
  check "a span POSTed is read back"
  now=$(($(date +%s%N) / 1000))
  curl -fsS -X POST -H "Content-Type: application/json" http://127.0.0.1:9411/api/v2/spans \
    -d "[{\"traceId\":\"00000000000000000000000000fe5a11\",\"id\":\"00000000000000a1\",\"name\":\"get\",\"timestamp\":$now,\"duration\":10,\"localEndpoint\":{\"serviceName\":\"fresh\"}}]"
  for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:9411/api/v2/trace/fe5a11 2>/dev/null | grep "\"fresh\"" >/dev/null && break; sleep 0.2; done
  curl -fsS http://127.0.0.1:9411/api/v2/trace/fe5a11 | grep "\"fresh\"" >/dev/null
  grep -q "classic" /tmp/run.log && { cat /tmp/run.log; exit 1; }
  kill -TERM -- -$runpid; wait $runpid || true
}
'
CHECKS='
check "postgres/postgres accepted over TCP"
PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d zipq -qtAc "SELECT 1" | grep -x 1 >/dev/null
check "database test exists"
PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d test -qtAc "SELECT 1" | grep -x 1 >/dev/null
check "vhost / makes quorum queues by default"
rabbitmqctl -q list_vhosts --no-table-headers name default_queue_type | grep -P "^/\tquorum$" >/dev/null
check "management API answers"
curl -fsS -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null
check "the span queue has its delivery limit"
rabbitmqctl -q list_policies -p / --no-table-headers | grep "zipq-span-queue" >/dev/null
'

run_root root "$PRELUDE"'
cd /src
serve_check root
check "a second services.sh only checks"
out=$(scripts/services.sh)
[ "$out" = "services: PostgreSQL 127.0.0.1:5432 and RabbitMQ 127.0.0.1:5672 are up" ] || { echo "$out"; exit 1; }
'"$CHECKS"'
check "the span queue zipkin is a quorum queue"
rabbitmqctl -q list_queues --no-table-headers name type | grep -P "^zipkin\tquorum$" >/dev/null
'

# The sudo user builds with the cache the root scenario warmed.
chown -R 1000:1000 "$WORK/gocache"

run_root sudo "$PRELUDE"'
check "a first run that stopped after installing PostgreSQL"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
useradd -m dev
echo "dev ALL=(ALL) NOPASSWD: ALL" >/etc/sudoers.d/dev
chown -R dev /src
check "services.sh as a sudo user repairs it"
runuser -u dev -- env HOME=/home/dev bash -c "cd /src && scripts/services.sh"
'"$CHECKS"'
check "a second run as the sudo user only checks"
out=$(runuser -u dev -- env HOME=/home/dev bash -c "cd /src && scripts/services.sh")
[ "$out" = "services: PostgreSQL 127.0.0.1:5432 and RabbitMQ 127.0.0.1:5672 are up" ] || { echo "$out"; exit 1; }
serve_check dev
'
echo "fresh-machine: 2 passed, 0 failed"
