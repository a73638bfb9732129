#!/usr/bin/env bash
# Brings up PostgreSQL and RabbitMQ on 127.0.0.1 when they are not answering:
# with `docker compose` where a Docker engine runs, else with Debian/Ubuntu
# packages (apt-get install + start). Then makes sure the databases zipq
# (for `make run`) and test (for `make test`) exist and RabbitMQ's management
# API (used by the tests to create per-test vhosts) is on. Idempotent: on a
# machine where everything already runs it only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PGPASS=postgres # the password zipq's default URL carries; trust auth ignores it

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # port name
  for _ in $(seq 1 120); do up "$1" && return 0; sleep 0.5; done
  echo "services: $2 did not come up on 127.0.0.1:$1" >&2; exit 1
}
has_systemd() { [ -d /run/systemd/system ]; }

start_postgres_apt() {
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    echo "services: installing PostgreSQL (apt)"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fresh_pg=1
  fi
  if has_systemd; then $SUDO systemctl start postgresql
  else $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  fi
  wait_for 5432 PostgreSQL
  if [ "${fresh_pg:-0}" = 1 ]; then # a fresh install: give postgres the password zipq's default URL uses
    $SUDO -u postgres psql -qc "ALTER USER postgres PASSWORD '$PGPASS'" >/dev/null
  fi
}

start_rabbitmq_apt() {
  if ! command -v rabbitmq-server >/dev/null; then
    echo "services: installing RabbitMQ (apt)"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  if has_systemd; then $SUDO systemctl start rabbitmq-server
  else $SUDO rabbitmq-server -detached || true
  fi
  wait_for 5672 RabbitMQ
  $SUDO rabbitmqctl await_startup >/dev/null 2>&1 || true
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

if ! up 15672; then
  echo "services: enabling the RabbitMQ management API"
  if docker info >/dev/null 2>&1 && docker compose ps --status running rabbitmq 2>/dev/null | grep -q rabbitmq; then
    docker compose exec -T rabbitmq rabbitmq-plugins enable rabbitmq_management >/dev/null
  else
    $SUDO rabbitmq-plugins enable rabbitmq_management >/dev/null
  fi
  wait_for 15672 "RabbitMQ management"
fi

# Databases: psql from the host if it has one, else inside the container.
psql_cmd() {
  if command -v psql >/dev/null; then PGPASSWORD=$PGPASS psql -h 127.0.0.1 -U postgres -d postgres -qtAc "$1"
  else docker compose exec -T postgres psql -U postgres -d postgres -qtAc "$1"
  fi
}
for db in zipq test; do
  if [ "$(psql_cmd "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
    psql_cmd "CREATE DATABASE $db" >/dev/null
    echo "services: created database $db"
  fi
done
echo "services: PostgreSQL 127.0.0.1:5432 and RabbitMQ 127.0.0.1:5672 are up"
