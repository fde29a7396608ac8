#!/usr/bin/env bash
# Bring a fresh Debian machine (or container) to where `make test` and `make demo` run:
# RabbitMQ, PostgreSQL's programs (the tests start a private server of their own), Chromium (for
# the browser tests), the virtualenv, and this project installed in it with its dev extras.
# Idempotent and silent when nothing is missing; works without root when nothing is missing.
# It must never upgrade or remove packages, start a system RabbitMQ or PostgreSQL service, or
# touch anything else outside this repository.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive

RABBITMQ_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
POSTGRES_GLOB='/usr/lib/postgresql/*/bin/initdb'
CHROMIUM=/usr/bin/chromium
PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.installed
apt_updated=

say() { echo "bootstrap: $*" >&2; }

apt_install() {
  if [[ $(id -u) -ne 0 ]]; then
    say "missing: $*; run this script as root, or: sudo apt-get install $*"
    exit 1
  fi
  # The packages would start a system broker or database on the default ports; tests and the
  # demo run private ones instead, so forbid service starts for the duration of the install.
  local policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  if [[ -z $apt_updated ]]; then
    apt-get update -qq
    apt_updated=1
  fi
  say "installing $*"
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [[ ! -x $RABBITMQ_SERVER ]]; then
  apt_install rabbitmq-server
fi

# The store's tests also run on PostgreSQL: a private server (sims/postgres_node.py) from
# Debian's programs, in a temporary folder; as root it runs as the package's `postgres` user.
if ! compgen -G "$POSTGRES_GLOB" >/dev/null; then
  apt_install postgresql
fi

# The browser tests (tests/browser/) drive Debian's Chromium through Playwright, never a
# browser Playwright downloads itself; DejaVu gives the screenshots readable Vietnamese text.
if [[ ! -x $CHROMIUM ]]; then
  apt_install chromium fonts-dejavu-core
fi

if [[ ! -x $VENV/bin/python ]]; then
  # Debian splits venv/ensurepip out of python3.
  if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
  say "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

if [[ ! -e $STAMP || pyproject.toml -nt $STAMP || constraints.txt -nt $STAMP ]]; then
  say "installing the project into $VENV"
  # pip and the build backend are chatty even with --quiet: show their output only on failure.
  log=$(mktemp)
  if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]' \
    >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  touch "$STAMP"
fi

# The checkout itself on the venv's path, for what is not in the product's wheel: the
# simulators, the demo and the private-broker helper (sims/), the tests and the bench.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [[ "$(cat "$site/hub-checkout.pth" 2>/dev/null)" != "$PWD" ]]; then
  echo "$PWD" >"$site/hub-checkout.pth"
fi
