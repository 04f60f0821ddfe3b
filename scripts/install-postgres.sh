#!/usr/bin/env bash
# install-postgres.sh: make sure PostgreSQL's server binaries (initdb,
# postgres) are present for the case-store tests, which start their own
# throwaway server (internal/pgtest). Installs Debian's `postgresql` package
# with apt-get when they are missing; does nothing when they are there.
# No system cluster is created or started: the tests need only the binaries.
set -euo pipefail

have_pg() {
	command -v initdb >/dev/null 2>&1 && return 0
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null 2>&1 && return 0
	[ -n "${SANIGATE_PG_BIN:-}" ] && [ -x "${SANIGATE_PG_BIN}/initdb" ] && return 0
	return 1
}

if have_pg; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-postgres: PostgreSQL not found and apt-get is not available;" >&2
	echo "install the PostgreSQL server (initdb, postgres) and set SANIGATE_PG_BIN to its bin folder" >&2
	exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		SUDO="sudo -n"
	else
		echo "install-postgres: PostgreSQL not found; run as root: apt-get install -y postgresql" >&2
		exit 1
	fi
fi

echo ">> installing PostgreSQL (Debian package postgresql) for the case-store tests"
# Ask postgresql-common not to create (and start) the default cluster.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
	$SUDO mkdir -p /etc/postgresql-common
	echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold postgresql >/dev/null

if ! have_pg; then
	echo "install-postgres: installed, but initdb is still not found" >&2
	exit 1
fi
echo ">> PostgreSQL installed"
