#!/usr/bin/env bash
# Runs the integration tests against the real servers they need, which this
# script starts on 127.0.0.1 and stops again, whatever happens.
#   tests/integration/run.sh [test_name ...]
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export S3B_TOP=$top
export S3B_BUILD=${S3B_BUILD:-$top/build}
export S3B_TMP=${S3B_TMP:-$(mktemp -d /tmp/s3b-it.XXXXXX)}

cleanup() {
	"$top/tests/lib/ceph.sh" stop >/dev/null 2>&1
	[ -x "$top/tests/lib/opensearch.sh" ] && "$top/tests/lib/opensearch.sh" stop >/dev/null 2>&1
	rm -rf "$S3B_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "integration: starting radosgw on 127.0.0.1"
start=$(date +%s)
if ! "$top/tests/lib/ceph.sh" start >"$S3B_TMP/ceph-start.log" 2>&1; then
	cat "$S3B_TMP/ceph-start.log"
	echo "integration: 0 passed, 1 failed"
	exit 1
fi
echo "integration: radosgw up in $(( $(date +%s) - start )) s"
export S3B_RGW_RUNNING=1

if [ $# -gt 0 ]; then
	tests=()
	for t in "$@"; do tests+=("$here/$t.sh"); done
else
	tests=("$here"/test_*.sh)
fi

passed=0 failed=0
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	log="$S3B_TMP/$name.log"
	t0=$(date +%s)
	timeout -k 10 900 bash "$t" >"$log" 2>&1
	rc=$?
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
	[ -n "$line" ] || { p=0; f=1; }
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	passed=$((passed + p)); failed=$((failed + f))
	if [ "$f" -ne 0 ]; then
		echo "--- $name FAILED (exit $rc, $(( $(date +%s) - t0 )) s):"
		tail -n 60 "$log"
	else
		echo "$name: $p passed ($(( $(date +%s) - t0 )) s)"
	fi
done
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
