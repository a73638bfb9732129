#!/usr/bin/env bash
# Brings up PostgreSQL and RabbitMQ on 127.0.0.1 when they are not answering:
# with `docker compose` where a Docker engine runs, else with Debian/Ubuntu
# packages (apt-get install + start). Then makes sure that:
#   - PostgreSQL accepts the user/password in zipq's default URL
#     (postgres/postgres) and the databases zipq (`make run`) and test
#     (`make test`) exist;
#   - RabbitMQ's vhost "/" creates queues as quorum queues by default, so the
#     argument-less `zipkin` queue that zipkin-go, Brave and zipq declare is
#     a quorum queue and keeps even transient messages across a broker
#     restart (README, "Durability");
#   - RabbitMQ's management API (used by the tests for per-test vhosts) is on.
# Every step checks before it acts, so a second run repairs what a failed
# first run left half done, and on a machine where all of it holds the script
# only checks. Works as root (no sudo needed) and as a user with sudo.
# scripts/fresh-machine.sh runs it on a throwaway Debian root.
set -euo pipefail
cd "$(dirname "$0")/.."

PGPASS=postgres # the password zipq's default URL carries; trust auth ignores it

# as_root / as_user run a command with the privileges it needs, as root
# (directly) or as a sudo user.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_user() { # user command...
  local u=$1; shift
  if [ "$(id -un)" = "$u" ]; then "$@"
  elif [ "$(id -u)" -eq 0 ]; then runuser -u "$u" -- "$@"
  else sudo -u "$u" "$@"
  fi
}
apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # port name
  for _ in $(seq 1 120); do up "$1" && return 0; sleep 0.5; done
  echo "services: $2 did not come up on 127.0.0.1:$1" >&2; exit 1
}
has_systemd() { [ -d /run/systemd/system ]; }
compose_runs() { docker compose ps --status running "$1" 2>/dev/null | grep -q "$1"; }

start_postgres_apt() {
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "services: installing PostgreSQL (apt)"
    apt_install postgresql
  fi
  if has_systemd; then as_root systemctl start postgresql
  else as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  fi
  wait_for 5432 PostgreSQL
}

start_rabbitmq_apt() {
  if ! command -v rabbitmq-server >/dev/null; then
    echo "services: installing RabbitMQ (apt)"
    apt_install rabbitmq-server
  fi
  if has_systemd; then as_root systemctl start rabbitmq-server
  else as_root rabbitmq-server -detached || true
  fi
  wait_for 5672 RabbitMQ
}

if up 5432 && up 5672; then :
elif docker info >/dev/null 2>&1; then
  echo "services: starting PostgreSQL and RabbitMQ with docker compose"
  docker compose up -d --wait postgres rabbitmq
  wait_for 5432 PostgreSQL; wait_for 5672 RabbitMQ
else
  up 5432 || start_postgres_apt
  up 5672 || start_rabbitmq_apt
fi

# --- PostgreSQL: the password and the databases ------------------------------
psql_url() { PGPASSWORD=$PGPASS PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -U postgres -d postgres -qtAc "$1"; }
psql_cmd() {
  if command -v psql >/dev/null; then psql_url "$1"
  else docker compose exec -T postgres psql -U postgres -d postgres -qtAc "$1"
  fi
}
if command -v psql >/dev/null && ! psql_url "SELECT 1" >/dev/null 2>&1; then
  # A fresh Debian install: the postgres role has no password and only the
  # local socket (peer auth as the OS user postgres) lets it in. Give it the
  # password zipq's default URL uses, but never replace one somebody set.
  if ! id postgres >/dev/null 2>&1; then
    echo "services: PostgreSQL on 127.0.0.1:5432 refuses postgres/postgres and is not a local install;" >&2
    echo "          set POSTGRES_URL (and ZIPQ_TEST_POSTGRES_URL for the tests) to a URL it accepts" >&2
    exit 1
  fi
  has_pw=$(as_user postgres psql -d postgres -qtAc "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'postgres'")
  if [ "$has_pw" = t ]; then
    echo "services: the postgres role already has a password other than zipq's default;" >&2
    echo "          set POSTGRES_URL (and ZIPQ_TEST_POSTGRES_URL for the tests) to a URL with it" >&2
    exit 1
  fi
  echo "services: giving the postgres role the password of zipq's default URL"
  as_user postgres psql -d postgres -qc "ALTER USER postgres PASSWORD '$PGPASS'" >/dev/null
  psql_url "SELECT 1" >/dev/null
fi
for db in zipq test; do
  if [ "$(psql_cmd "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    psql_cmd "CREATE DATABASE $db" >/dev/null
    echo "services: created database $db"
  fi
done

# --- RabbitMQ: quorum queues by default on "/", management API --------------
rabbitmqctl_() {
  if ! command -v rabbitmqctl >/dev/null && compose_runs rabbitmq; then docker compose exec -T rabbitmq rabbitmqctl "$@"
  else as_root rabbitmqctl "$@"
  fi
}
rabbitmqctl_ -q await_startup >/dev/null 2>&1 || true

# RabbitMQ 3.10 to 3.12 cannot change an existing vhost's default queue type,
# so "/" is recreated with it — only while it holds no queue and no policy,
# so nothing can be lost (a fresh install has neither). Users' permissions
# on it are put back. A "/" that already holds queues is left alone with a
# warning: zipq then warns at start and /health says "degraded".
dqt=$(rabbitmqctl_ -q list_vhosts --no-table-headers name default_queue_type | awk -F'\t' '$1 == "/" {print $2}')
if [ "$dqt" != quorum ]; then
  queues=$(rabbitmqctl_ -q list_queues -p / --no-table-headers name | grep -c . || true)
  policies=$(rabbitmqctl_ -q list_policies -p / --no-table-headers | grep -c . || true)
  if [ "$queues" = 0 ] && [ "$policies" = 0 ]; then
    echo "services: recreating RabbitMQ vhost / with default queue type quorum (it holds no queue)"
    perms=$(rabbitmqctl_ -q list_permissions -p / --no-table-headers)
    rabbitmqctl_ -q delete_vhost / >/dev/null 2>&1 || true
    rabbitmqctl_ -q add_vhost / --default-queue-type quorum >/dev/null
    [ -n "$perms" ] || perms=$(printf 'guest\t.*\t.*\t.*')
    while IFS=$'\t' read -r user conf write read; do
      [ -n "$user" ] && rabbitmqctl_ -q set_permissions -p / "$user" "$conf" "$write" "$read" >/dev/null
    done <<<"$perms"
    # The span queue's delivery limit: a message the client library
    # cannot decode is dead-lettered to zipkin.poison instead of coming
    # back forever (README, "A message the client cannot read"). Set with
    # the vhost, so a broker someone already configured is left as it is.
    echo "services: setting the span queue's delivery limit (policy zipq-span-queue)"
    rabbitmqctl_ -q set_policy -p / --apply-to queues zipq-span-queue '^zipkin$' \
      '{"delivery-limit":20,"dead-letter-exchange":"","dead-letter-routing-key":"zipkin.poison"}' >/dev/null
  else
    echo "services: WARNING: RabbitMQ vhost / has $queues queue(s) and its default queue type is '${dqt:-classic}', not quorum:" >&2
    echo "          a classic 'zipkin' queue loses zipkin-go's transient spans when the broker restarts." >&2
    echo "          README, \"Durability\", says how to move to a quorum queue." >&2
  fi
fi

if ! up 15672; then
  echo "services: enabling the RabbitMQ management API"
  if ! command -v rabbitmq-plugins >/dev/null && compose_runs rabbitmq; then
    docker compose exec -T rabbitmq rabbitmq-plugins enable rabbitmq_management >/dev/null
  else
    as_root rabbitmq-plugins enable rabbitmq_management >/dev/null
  fi
  wait_for 15672 "RabbitMQ management"
fi
echo "services: PostgreSQL 127.0.0.1:5432 and RabbitMQ 127.0.0.1:5672 are up"
