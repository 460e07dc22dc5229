# common.sh: sourced by the integration tests. Counting, the tools'
# environment, and checks through a second S3 client (awscli).
# The runner (tests/integration/run.sh) starts radosgw and exports
# S3B_TOP, S3B_BUILD and S3B_TMP.
set -u
: "${S3B_TOP:?run through tests/integration/run.sh}"
RGW_PORT=${RGW_PORT:-7480}
export AWS_ACCESS_KEY_ID=${S3_ACCESS_KEY:-AKIAIOSFODNN7EXAMPLE}
export AWS_SECRET_ACCESS_KEY=${S3_SECRET_KEY:-wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY}
export AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
RGW_URL=http://127.0.0.1:$RGW_PORT
export AWS_ENDPOINT_URL=$RGW_URL
unset AWS_CA_BUNDLE AWS_PROFILE AWS_SESSION_TOKEN

T_PASSED=0 T_FAILED=0
ok() { T_PASSED=$((T_PASSED + 1)); echo "ok: $*"; }
not_ok() { T_FAILED=$((T_FAILED + 1)); echo "NOT OK: $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', want '$3'"; fi; }
done_testing() { echo "$T_PASSED passed, $T_FAILED failed"; [ "$T_FAILED" -eq 0 ]; }

# A fresh work dir for one scenario: $W/root (bucket folders), $W/spool.
new_work() {
	W=$(mktemp -d "$S3B_TMP/w.XXXXXX")
	mkdir -p "$W/root" "$W/spool"
}

# The tools' environment for the work dir; callers add or override.
tool_env() {
	export S3_SYNC_BUCKETS_FOLDER=$W/root S3_BATCH_BUCKETS_FOLDER=$W/root
	export S3BATCH_SPOOL_DIR=$W/spool
	export ELASTICSEARCH_LOGS_HOST=127.0.0.1 ELASTICSEARCH_LOGS_PORT=${OS_PORT:-9200}
	export MANIFEST_FALLBACK_BUCKET=${FALLBACK_BUCKET:-s3b-fallback}
	# every test gets the fallback bucket, whatever ran before it
	aws s3api head-bucket --bucket "$MANIFEST_FALLBACK_BUCKET" >/dev/null 2>&1 ||
	    s3_mb "$MANIFEST_FALLBACK_BUCKET" 2>/dev/null || true
}

s3_mb() { aws s3api create-bucket --bucket "$1" >/dev/null; }
s3_rb() { aws s3 rb "s3://$1" --force >/dev/null 2>&1 || true; }
# Every key, one per line, exactly (JSON through python, so odd names survive).
s3_keys() {
	aws s3api list-objects-v2 --bucket "$1" --output json |
	    python3 -c 'import json,sys
d=sys.stdin.read().strip()
for o in (json.loads(d).get("Contents") or [] if d else []): print(o["Key"])' | LC_ALL=C sort
}
s3_get() { aws s3api get-object --bucket "$1" --key "$2" "$3" >/dev/null; }
s3_etag() { aws s3api head-object --bucket "$1" --key "$2" --query ETag --output text | tr -d '"'; }
s3_open_uploads() {
	aws s3api list-multipart-uploads --bucket "$1" --output json |
	    python3 -c 'import json,sys
d=sys.stdin.read().strip()
print(len((json.loads(d).get("Uploads") or []) if d else []))'
}

# Relative paths of the regular files under a dir, sorted.
local_files() { (cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort); }

# Compare every object with the local copy kept in $2 (a mirror of the tree).
check_objects_match() {
	local bucket=$1 mirror=$2 k bad=0
	while IFS= read -r k; do
		s3_get "$bucket" "$k" "$S3B_TMP/get.$$" || { echo "cannot get '$k'"; bad=1; continue; }
		cmp -s "$S3B_TMP/get.$$" "$mirror/$k" || { echo "bytes differ: '$k'"; bad=1; }
	done < <(local_files "$mirror")
	rm -f "$S3B_TMP/get.$$"
	[ "$bad" -eq 0 ]
}

# The fault proxy in front of radosgw: sets PROXY_URL, PROXY_PID, PROXY_CTL
# (rules file; write with set_faults) and PROXY_LOG (one JSON line a request).
start_proxy() {
	PROXY_CTL=$W/faults.json PROXY_LOG=$W/proxy.log
	echo '{"rules":[]}' > "$PROXY_CTL"
	coproc PROXY { exec python3 "$S3B_TOP/tests/lib/faultproxy.py" \
	    --listen 127.0.0.1:0 --upstream "127.0.0.1:$RGW_PORT" \
	    --control "$PROXY_CTL" --log "$PROXY_LOG" --seed "${1:-1}"; }
	local line
	read -r -t 20 line <&"${PROXY[0]}" || { echo "proxy did not start"; return 1; }
	PROXY_URL=http://${line#listening on }
}
stop_proxy() {
	[ -n "${PROXY_PID:-}" ] || return 0
	kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null
	PROXY_PID=
}
set_faults() {
	printf '%s\n' "$1" > "$PROXY_CTL.tmp" && mv "$PROXY_CTL.tmp" "$PROXY_CTL"
	sleep 0.05
}
