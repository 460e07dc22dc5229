#!/usr/bin/env bash
# TLS: verification is on by default; AWS_CA_BUNDLE and
# ELASTICSEARCH_LOGS_CA_BUNDLE are honoured, each for its own server. A
# throwaway CA (tests/lib/tls_certs.sh) signs a certificate for 127.0.0.1
# and localhost; tests/lib/tls_proxy.py puts an https front before radosgw
# and before OpenSearch, relaying bytes unchanged (SigV4 signs the Host
# header: radosgw sees the host:port the client signed, the proxy's).
# Without the CA: a clear TLS error, exit 1, nothing lost, nothing sent to
# the fallback bucket. With it: objects and documents arrive.
. "$S3B_TOP/tests/lib/common.sh"
PY=$(python3 -c 'import sys; print(sys.executable)')
PATH=$(dirname "$PY"):$PATH	# past the pyenv shims: a second a call
BATCH=$S3B_BUILD/s3-batch SYNC=$S3B_BUILD/s3-sync
export OS_PORT=${TLS_OS_PORT:-58921} OS_ROOT=$S3B_TMP/os-tls
ES=http://127.0.0.1:$OS_PORT
IDX=s3-batch-manifest
RUN=$(date +%s | tail -c 6)$$
FALLBACK_BUCKET=tls-fallback-$RUN
PKI=$S3B_TMP/pki
export S3BATCH_SETTLE_SECONDS=0

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	"$S3B_TOP/tests/lib/opensearch.sh" stop >/dev/null 2>&1
}
trap cleanup EXIT

"$S3B_TOP/tests/lib/tls_certs.sh" "$PKI" ||
    { echo "cannot make the test CA"; echo "0 passed, 1 failed"; exit 1; }
# The port may still be held by a connection in TIME_WAIT (a node of an
# earlier test closed it); wait until it can be bound again.
for i in $(seq 1 120); do
	python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' \
	    "$OS_PORT" 2>/dev/null && break
	sleep 1
done
"$S3B_TOP/tests/lib/opensearch.sh" start >/dev/null ||
    { echo "OpenSearch did not start"; echo "0 passed, 1 failed"; exit 1; }

# tls_start NAME UPSTREAM_PORT CERT: sets NAME_PORT, NAME_LOG (a line a connection).
tls_start() {
	local out=$S3B_TMP/$1.out i
	printf -v "$1_LOG" '%s' "$S3B_TMP/$1.log"
	: > "$S3B_TMP/$1.log"
	python3 "$S3B_TOP/tests/lib/tls_proxy.py" --listen 127.0.0.1:0 \
	    --upstream "127.0.0.1:$2" --cert "$PKI/$3.pem" --key "$PKI/$3.key" \
	    --log "$S3B_TMP/$1.log" >"$out" 2>"$S3B_TMP/$1.err" &
	PIDS+=($!)
	for i in $(seq 1 200); do grep -qs '^listening on' "$out" && break; sleep 0.1; done
	grep -qs '^listening on' "$out" || { echo "tls proxy $1 did not start"; return 1; }
	printf -v "$1_PORT" '%s' "$(sed -n 's/^listening on 127\.0\.0\.1://p' "$out")"
}
tls_start S3T "$RGW_PORT" server && tls_start EST "$OS_PORT" server &&
    tls_start BADNAME "$RGW_PORT" wrongname || { echo "0 passed, 1 failed"; exit 1; }
# Connections the client broke off: a failed handshake, or (a name that does
# not match, seen by the client after the server's last flight) no byte sent.
refused() { grep -cE '^handshake failed|^ok 0 0$' "$1"; }

aws s3api create-bucket --bucket "$FALLBACK_BUCKET" >/dev/null

fill() {	# bucket: 12 files in two folders
	local r=$W/root/$1 i
	mkdir -p "$r/in/a" "$r/in/b c"
	for i in $(seq 1 6); do
		head -c $((RANDOM % 3000 + 1)) /dev/urandom > "$r/in/a/f$i"
		echo "file $i" > "$r/in/b c/g $i.txt"
	done
	mkdir -p "$W/mirror"; cp -a "$r" "$W/mirror/"
}
setup() {	# label tool
	new_work; tool_env
	export MANIFEST_FALLBACK_BUCKET=$FALLBACK_BUCKET
	L=$1 B=tls-$1-$RUN
	s3_mb "$B"; fill "$B"
}
go() {	# tool env...: one run; RC, SECS, ERR
	local tool=$1 t0; shift
	ERR=$W/err.$((++NRUN)); t0=$(date +%s.%N)
	env "$@" "$S3B_BUILD/$tool" 2>"$ERR"; RC=$?
	SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	echo "[$L] $tool: exit $RC in $SECS s"; sed 's/^/    /' "$ERR"
}
NRUN=0
within() { check "$L: done within $1 s ($SECS s)" awk -v s="$SECS" -v m="$1" 'BEGIN { exit !(s < m) }'; }
one_line_errors() {	# tool pattern max
	check "$L: every line is '$1: error|warning: ...'" bash -c "! grep -vE '^$1: (error|warning): ' '$ERR'"
	check "$L: the message says '$2'" grep -qE "$2" "$ERR"
	check "$L: at most $3 lines ($(wc -l < "$ERR"))" test "$(wc -l < "$ERR")" -le "$3"
}

# Documents in OpenSearch for a bucket: their file.path, sorted.
es_paths() {
	curl -s -XPOST "$ES/$IDX/_refresh" >/dev/null
	curl -s -H 'Content-Type: application/json' "$ES/$IDX/_search?size=10000" \
	    -d "{\"query\":{\"term\":{\"aws.s3.bucket.name\":\"$1\"}}}" |
	python3 -c 'import json,sys
d=json.load(sys.stdin)
for h in d.get("hits",{}).get("hits",[]): print(h["_source"]["file"]["path"])' | LC_ALL=C sort
}
# Fallback entries for a bucket: file.path, sorted.
fallback_paths() {
	local k
	s3_keys "$FALLBACK_BUCKET" | while IFS= read -r k; do
		s3_get "$FALLBACK_BUCKET" "$k" "$W/fb.json"
		python3 -c 'import json,sys
for e in json.load(open(sys.argv[1]))["entries"]:
    if e["aws"]["s3"]["bucket"]["name"] == sys.argv[2]: print(e["file"]["path"])' "$W/fb.json" "$1"
	done | LC_ALL=C sort
}
# Every entry of every archive of the bucket, with its folder, sorted;
# then the bytes, through GNU tar.
archive_paths() {
	local k d
	s3_keys "$1" | while IFS= read -r k; do
		d=$(dirname "$k"); s3_get "$1" "$k" "$W/a.tar"
		tar -tf "$W/a.tar" | sed "s|^|$d/|"
	done | LC_ALL=C sort
}
archives_hold_tree() {
	local k d out=$W/untar
	rm -rf "$out"; mkdir -p "$out"
	while IFS= read -r k; do
		d=$(dirname "$k"); mkdir -p "$out/$d"
		s3_get "$1" "$k" "$W/a.tar" && tar -xf "$W/a.tar" -C "$out/$d" || return 1
	done < <(s3_keys "$1")
	diff -r "$out" "$W/mirror/$1"
}
spool_empty() {
	test -z "$(ls -A "$W/spool/$1/batches" 2>/dev/null)$(ls -d "$W/spool/$1"/work.* 2>/dev/null)"
}
nothing_sent() {	# no object, no document, no fallback entry for $B
	check_eq "$L: no object in S3" "$(s3_keys "$B")" ""
	check_eq "$L: no document in OpenSearch" "$(es_paths "$B")" ""
	check_eq "$L: nothing in the fallback bucket" "$(fallback_paths "$B")" ""
}

S3_HTTPS=https://127.0.0.1:$S3T_PORT

# ---------------------------- S3 over https -------------------------------

# --- s3-batch, no CA bundle: the system store does not know the test CA ---
setup batch-s3
n0=$(refused "$S3T_LOG")
go s3-batch AWS_ENDPOINT_URL="$S3_HTTPS"
check_eq "$L, system store: exit 1" "$RC" 1
within 15
one_line_errors s3-batch "SSL certificate problem" 3
n=$(( $(refused "$S3T_LOG") - n0 ))
check "$L, system store: the client refused the certificate, not retried ($n handshakes for 2 archives)" \
    test "$n" -ge 1 -a "$n" -le 2
check "$L, system store: the sealed batches wait in the spool" \
    test "$(ls "$W/spool/s3-batch/batches" | wc -l)" -eq 2
nothing_sent

# --- a CA bundle that did not sign the server's certificate ---
go s3-batch AWS_ENDPOINT_URL="$S3_HTTPS" AWS_CA_BUNDLE="$PKI/other-ca.pem"
check_eq "$L, another CA: exit 1" "$RC" 1
one_line_errors s3-batch "SSL certificate problem" 3
nothing_sent

# --- the right CA, but the certificate names another host ---
go s3-batch AWS_ENDPOINT_URL="https://127.0.0.1:$BADNAME_PORT" AWS_CA_BUNDLE="$PKI/ca.pem"
check_eq "$L, wrong name: exit 1" "$RC" 1
one_line_errors s3-batch "127\.0\.0\.1|host ?name|subject" 3
check "$L, wrong name: the client refused the certificate" test "$(refused "$BADNAME_LOG")" -ge 1
nothing_sent

# --- AWS_CA_BUNDLE: the waiting batches go up, signatures verified by radosgw ---
go s3-batch AWS_ENDPOINT_URL="$S3_HTTPS" AWS_CA_BUNDLE="$PKI/ca.pem"
check_eq "$L, AWS_CA_BUNDLE: exit 0" "$RC" 0
check_eq "$L, AWS_CA_BUNDLE: each file in one archive" "$(archive_paths "$B")" "$(local_files "$W/mirror/$B")"
check "$L, AWS_CA_BUNDLE: with its bytes" archives_hold_tree "$B"
check_eq "$L, AWS_CA_BUNDLE: one document per file" "$(es_paths "$B")" "$(local_files "$W/mirror/$B")"
check_eq "$L, AWS_CA_BUNDLE: no fallback entry" "$(fallback_paths "$B")" ""
check "$L, AWS_CA_BUNDLE: the spool is empty" spool_empty s3-batch
check "$L, AWS_CA_BUNDLE: the requests went over TLS" grep -q '^ok ' "$S3T_LOG"

# --- s3-sync: https://localhost, no CA: files stay; with it: uploaded ---
setup sync-s3
go s3-sync AWS_ENDPOINT_URL="https://localhost:$S3T_PORT"
check_eq "$L, system store: exit 1" "$RC" 1
within 15
one_line_errors s3-sync "SSL certificate problem" 14
check_eq "$L, system store: every file stays" "$(local_files "$W/root")" "$(local_files "$W/mirror")"
nothing_sent
go s3-sync AWS_ENDPOINT_URL="https://localhost:$S3T_PORT" AWS_CA_BUNDLE="$PKI/ca.pem"
check_eq "$L, AWS_CA_BUNDLE: exit 0" "$RC" 0
check_eq "$L, AWS_CA_BUNDLE: every file is an object" "$(s3_keys "$B")" "$(local_files "$W/mirror/$B")"
check "$L, AWS_CA_BUNDLE: with its bytes" check_objects_match "$B" "$W/mirror/$B"
check_eq "$L, AWS_CA_BUNDLE: nothing left locally" "$(local_files "$W/root")" ""
check_eq "$L, AWS_CA_BUNDLE: one document per file" "$(es_paths "$B")" "$(local_files "$W/mirror/$B")"
check "$L, AWS_CA_BUNDLE: the spool is empty" spool_empty s3-sync

# ------------------------- OpenSearch over https --------------------------
# S3 over https too (with AWS_CA_BUNDLE), so the fallback goes that way.

# --- ELASTICSEARCH_LOGS_SCHEME=https without its CA bundle: AWS_CA_BUNDLE
# is S3's only; the manifest goes to the fallback bucket (SPEC) ---
setup batch-es
n0=$(refused "$EST_LOG")
go s3-batch AWS_ENDPOINT_URL="$S3_HTTPS" AWS_CA_BUNDLE="$PKI/ca.pem" \
    ELASTICSEARCH_LOGS_SCHEME=https ELASTICSEARCH_LOGS_PORT="$EST_PORT"
check_eq "$L, no ES CA: exit 0 (the fallback took the manifest)" "$RC" 0
one_line_errors s3-batch "SSL certificate problem" 3
n=$(( $(refused "$EST_LOG") - n0 ))
check "$L, no ES CA: a refused certificate is not retried like a lost connection ($n handshakes, $SECS s)" \
    test "$n" -le 2
check_eq "$L, no ES CA: no document in OpenSearch" "$(es_paths "$B")" ""
check_eq "$L, no ES CA: every file in one fallback entry" "$(fallback_paths "$B")" "$(local_files "$W/mirror/$B")"
check_eq "$L, no ES CA: each file in one archive" "$(archive_paths "$B")" "$(local_files "$W/mirror/$B")"
check "$L, no ES CA: the spool is empty" spool_empty s3-batch

# --- ELASTICSEARCH_LOGS_CA_BUNDLE: the documents arrive ---
setup batch-es-ca
go s3-batch AWS_ENDPOINT_URL="$S3_HTTPS" AWS_CA_BUNDLE="$PKI/ca.pem" \
    ELASTICSEARCH_LOGS_SCHEME=https ELASTICSEARCH_LOGS_PORT="$EST_PORT" \
    ELASTICSEARCH_LOGS_CA_BUNDLE="$PKI/ca.pem"
check_eq "$L: exit 0" "$RC" 0
check_eq "$L: quiet under cron" "$(cat "$ERR")" ""
check_eq "$L: one document per file" "$(es_paths "$B")" "$(local_files "$W/mirror/$B")"
check_eq "$L: no fallback entry" "$(fallback_paths "$B")" ""
check "$L: the archives hold the files" archives_hold_tree "$B"
check "$L: the spool is empty" spool_empty s3-batch
check "$L: _bulk went over TLS" grep -q '^ok ' "$EST_LOG"

# --- s3-sync, both over https by name (localhost), both bundles ---
setup sync-es-ca
go s3-sync AWS_ENDPOINT_URL="https://localhost:$S3T_PORT" AWS_CA_BUNDLE="$PKI/ca.pem" \
    ELASTICSEARCH_LOGS_SCHEME=https ELASTICSEARCH_LOGS_HOST=localhost \
    ELASTICSEARCH_LOGS_PORT="$EST_PORT" ELASTICSEARCH_LOGS_CA_BUNDLE="$PKI/ca.pem"
check_eq "$L: exit 0" "$RC" 0
check_eq "$L: quiet under cron" "$(cat "$ERR")" ""
check "$L: every object with its bytes" check_objects_match "$B" "$W/mirror/$B"
check_eq "$L: one document per file" "$(es_paths "$B")" "$(local_files "$W/mirror/$B")"
check_eq "$L: no fallback entry" "$(fallback_paths "$B")" ""
check "$L: the spool is empty" spool_empty s3-sync

# --- the ES certificate names another host: refused even with the CA ---
setup batch-es-name
tls_start BADES "$OS_PORT" wrongname
go s3-batch AWS_ENDPOINT_URL="$S3_HTTPS" AWS_CA_BUNDLE="$PKI/ca.pem" \
    ELASTICSEARCH_LOGS_SCHEME=https ELASTICSEARCH_LOGS_PORT="$BADES_PORT" \
    ELASTICSEARCH_LOGS_CA_BUNDLE="$PKI/ca.pem"
check_eq "$L: exit 0 (the fallback took the manifest)" "$RC" 0
check "$L: the warning names the host" grep -qE "127\.0\.0\.1|host ?name|subject" "$ERR"
check "$L: the client refused the certificate" test "$(refused "$BADES_LOG")" -ge 1
check_eq "$L: no document in OpenSearch" "$(es_paths "$B")" ""
check_eq "$L: every file in one fallback entry" "$(fallback_paths "$B")" "$(local_files "$W/mirror/$B")"

done_testing
