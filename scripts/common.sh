# scripts/common.sh: what scripts/run and scripts/test share. Sourced, not run.
#
# Both must work on a fresh Debian 12 machine: they install the Debian
# packages that are missing (with sudo when not root), set up the meson
# build directory if it is not there yet, and compile.

bn_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building the daemon and running the unit and integration tests need.
bn_build_packages=(
	meson ninja-build gcc pkg-config
	libmicrohttpd-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev
	libpq-dev postgresql
)

# What the 'python' suite (the client in clients/python) needs.
bn_python_packages=(python3 python3-numpy python3-torch)

bn_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# bn_need_packages PKG...: apt-get install those not installed yet.
bn_need_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	# Installing postgresql must not create and start a cluster of the machine's own:
	# the tests start a private one (tests/pg/cluster).
	if [[ " ${missing[*]} " == *" postgresql "* ]] && [ ! -e /etc/postgresql-common/createcluster.conf ]; then
		"${sudo[@]}" mkdir -p /etc/postgresql-common
		echo 'create_main_cluster = false' | "${sudo[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
	fi
	bn_log "installing ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# bn_pg_start: a private PostgreSQL cluster (tests/pg/cluster) for the
# integration-pg suite, stopped and removed when the shell exits; exports
# BATCHNORMD_TEST_STORE and BATCHNORMD_TEST_PG_DIR. Never the machine's own.
bn_pg_start() {
	bn_pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/bnd-pg-XXXXXX")
	chmod 755 "$bn_pg_dir"
	trap '"$bn_root/tests/pg/cluster" destroy "$bn_pg_dir" || true' EXIT
	BATCHNORMD_TEST_STORE=$("$bn_root/tests/pg/cluster" start "$bn_pg_dir")
	BATCHNORMD_TEST_PG_DIR=$bn_pg_dir
	export BATCHNORMD_TEST_STORE BATCHNORMD_TEST_PG_DIR
	bn_log "PostgreSQL for the tests at $BATCHNORMD_TEST_STORE"
}

# bn_build DIR [MESON-SETUP-ARGS...]: set up DIR if needed, then compile it.
bn_build() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$bn_root" "$@" >/dev/null
	fi
	meson compile -C "$dir" >/dev/null
}

# bn_summary DIR LABEL: one closing line from the run's test log,
# "LABEL: N passed, N failed, N skipped". The log is meson-logs/LABEL.json,
# or LABEL-WRAPPER.json when meson test ran with --wrapper.
bn_summary() {
	local log="" f
	for f in "$1/meson-logs/$2".json "$1/meson-logs/$2"-*.json; do
		[ -f "$f" ] && [ -z "$log" -o "$f" -nt "$log" ] && log=$f
	done
	[ -n "$log" ] || return 0
	python3 - "$log" "$2" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for line in open(sys.argv[1]):
    result = json.loads(line).get("result", "")
    key = "OK" if result in ("OK", "EXPECTEDFAIL") else "SKIP" if result == "SKIP" else "FAIL"
    counts[key] += 1
print(f"{sys.argv[2]}: {counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
}

# bn_meson_test DIR LABEL [MESON-TEST-ARGS...]: run meson test, then print the closing line.
bn_meson_test() {
	local dir=$1 label=$2 rc=0
	shift 2
	meson test -C "$dir" --print-errorlogs --logbase "$label" "$@" || rc=$?
	bn_summary "$dir" "$label"
	return $rc
}
