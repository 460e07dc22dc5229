#!/usr/bin/env bash
# The fault proxy in front of radosgw and in front of OpenSearch, one fault
# a scenario, mostly for s3-batch (s3-sync where it costs little): refused
# connections, a stall, a trickle, 429, 503 SlowDown, 500, a reset mid-body,
# an error inside a 200, a wrong ETag, a wrong checksum; on the OpenSearch
# side 429, 503, resets, a stall (answer lost), a timeout, per-item 429.
# Each time: retries end within a bound (measured), the error is one clear
# line, the exit status says whether work is left, and the next run, with
# the fault gone, delivers everything: every file in S3 once, every manifest
# entry once (OpenSearch or fallback), the spool empty, no upload open.
#   FM_SKIP_SLOW=1 skips the one scenario that waits for a 60 s timeout.
. "$S3B_TOP/tests/lib/common.sh"
# The pyenv shims cost a second or two a call; use the interpreter itself.
PY=$(python3 -c 'import sys; print(sys.executable)')
PATH=$(dirname "$PY"):$PATH
BATCH=$S3B_BUILD/s3-batch SYNC=$S3B_BUILD/s3-sync
export OS_PORT=${FM_OS_PORT:-58920} OS_ROOT=$S3B_TMP/os-faults
ES=http://127.0.0.1:$OS_PORT
RUN=$(date +%s | tail -c 6)$$		# bucket names unique to this run
FALLBACK_BUCKET=fm-fallback-$RUN
export S3BATCH_SETTLE_SECONDS=0 S3BATCH_MULTIPART_THRESHOLD_MB=6 \
    S3BATCH_PART_SIZE_MB=5 AWS_MAX_ATTEMPTS=5

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	"$S3B_TOP/tests/lib/opensearch.sh" stop >/dev/null 2>&1
}
trap cleanup EXIT

# fm.py: the second client's side. mkbuckets, verify (one "ok<TAB>..." or
# "NOT OK<TAB>..." line per aspect), corrupt (same size, other bytes),
# bulk429 (a _bulk answer whose N items are all 429).
FM=$S3B_TMP/fm.py
cat > "$FM" <<'PY'
import collections, io, json, os, sys, tarfile, urllib.request
import boto3, botocore.config

def client(ep):
    return boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
        config=botocore.config.Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 3}))

def keys(s3, bucket):
    out, tok = [], None
    while True:
        kw = {"Bucket": bucket}
        if tok: kw["ContinuationToken"] = tok
        d = s3.list_objects_v2(**kw)
        out += [o["Key"] for o in d.get("Contents", [])]
        if not d.get("IsTruncated"): return out
        tok = d["NextContinuationToken"]

def get(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

def verify(ep, es_url, label, tool, bucket, mirror, root, spool, fallback, want_fb):
    s3 = client(ep); out = []
    def say(ok, what, detail=""):
        detail = " ".join(detail.split())	# one line, whatever it holds
        out.append("%s\t%s: %s%s" % ("ok" if ok else "NOT OK", label, what,
                   "" if ok or not detail else ": " + detail[:600]))
    want = {}
    for dp, dn, fn in os.walk(mirror):
        for f in fn:
            p = os.path.join(dp, f)
            want[os.path.relpath(p, mirror)] = open(p, "rb").read()
    # every file in S3 exactly once, with its bytes
    seen, bad = collections.Counter(), []
    objkeys = keys(s3, bucket)
    for k in objkeys:
        body = get(s3, bucket, k)
        if tool == "sync":
            seen[k] += 1
            if want.get(k) != body: bad.append(k)
            continue
        if not k.endswith(".tar"):
            bad.append("not an archive: " + k); continue
        d = os.path.dirname(k)
        try:
            with tarfile.open(fileobj=io.BytesIO(body)) as t:
                for m in t.getmembers():
                    p = (d + "/" if d else "") + m.name
                    seen[p] += 1
                    if not m.isfile() or want.get(p) != t.extractfile(m).read():
                        bad.append(p)
        except tarfile.TarError as e:
            bad.append("%s: %s" % (k, e))
    missing = sorted(set(want) - set(seen)); extra = sorted(set(seen) - set(want))
    dups = sorted(p for p, n in seen.items() if n > 1)
    say(not (missing or extra or dups or bad),
        "every file in S3 once, same bytes (%d files, %d objects)" % (len(want), len(objkeys)),
        "missing %s extra %s twice %s wrong bytes %s" % (missing[:4], extra[:4], dups[:4], bad[:4]))
    # every manifest entry once: OpenSearch documents + fallback entries
    def es(path, body):
        req = urllib.request.Request(es_url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            return json.load(urllib.request.urlopen(req, timeout=30))
        except urllib.error.HTTPError as e:
            if e.code == 404: return {"hits": {"hits": []}}
            raise
    es("/s3-batch-manifest/_refresh", {})
    hits = es("/s3-batch-manifest/_search?size=10000",
              {"query": {"term": {"aws.s3.bucket.name": bucket}}})["hits"]["hits"]
    man, where = collections.Counter(), {}
    for h in hits:
        p = h["_source"]["file"]["path"]; man[p] += 1
        where[p] = h["_source"]["aws"]["s3"]["object"]["key"]
    nes, nfb = len(hits), 0
    for k in keys(s3, fallback):
        for e in json.loads(get(s3, fallback, k))["entries"]:
            if e["aws"]["s3"]["bucket"]["name"] != bucket: continue
            p = e["file"]["path"]; man[p] += 1; nfb += 1
            where[p] = e["aws"]["s3"]["object"]["key"]
    missing = sorted(set(want) - set(man)); extra = sorted(set(man) - set(want))
    dups = sorted(p for p, n in man.items() if n > 1)
    dangling = sorted(p for p, k in where.items() if k not in objkeys)
    say(not (missing or extra or dups or dangling),
        "every manifest entry once (%d in OpenSearch, %d in the fallback)" % (nes, nfb),
        "missing %s extra %s twice %s archive not in S3 %s" % (missing[:4], extra[:4], dups[:4], dangling[:4]))
    if want_fb == "none":
        say(nfb == 0, "no entry went to the fallback", "%d did" % nfb)
    elif want_fb == "all":
        say(nes == 0 and nfb == len(want), "every entry went to the fallback",
            "%d in OpenSearch, %d in the fallback" % (nes, nfb))
    # nothing left behind: originals, spool, multipart uploads
    left = [os.path.join(dp, f) for dp, dn, fn in os.walk(root) for f in fn]
    say(not left, "no original left", str(left[:3]))
    junk = []
    for t in ("s3-batch", "s3-sync"):
        sp = os.path.join(spool, t)
        if not os.path.isdir(sp): continue
        junk += [t + "/" + n for n in os.listdir(sp) if n.startswith("work.")]
        for sub in ("batches", "mpu"):
            if os.path.isdir(os.path.join(sp, sub)):
                junk += [t + "/" + sub + "/" + n for n in os.listdir(os.path.join(sp, sub))]
    say(not junk, "the spool is empty", str(junk[:3]))
    ups = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    say(not ups, "no multipart upload open", "%d open" % len(ups))
    print("\n".join(out))

cmd = sys.argv[1]
if cmd == "mkbuckets":
    s3 = client(sys.argv[2])
    for b in sys.argv[3:]: s3.create_bucket(Bucket=b)
elif cmd == "verify":
    verify(*sys.argv[2:12])
elif cmd == "corrupt":	# ep bucket: every object, same size, other bytes
    s3 = client(sys.argv[2])
    for k in keys(s3, sys.argv[3]):
        n = len(get(s3, sys.argv[3], k))
        s3.put_object(Bucket=sys.argv[3], Key=k, Body=os.urandom(n))
        print(k)
elif cmd == "bulk429":
    item = {"index": {"status": 429, "error": {"type": "es_rejected_execution_exception",
            "reason": "rejected execution of coordinating operation"}}}
    print(json.dumps({"errors": True, "items": [item] * int(sys.argv[2])}))
PY

# --- servers and proxies ---
# The port may still be held by a connection in TIME_WAIT (a node of an
# earlier test closed it); wait until it can be bound again.
for i in $(seq 1 120); do
	python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' \
	    "$OS_PORT" 2>/dev/null && break
	sleep 1
done
"$S3B_TOP/tests/lib/opensearch.sh" start >/dev/null ||
    { echo "OpenSearch did not start"; echo "0 passed, 1 failed"; exit 1; }

# fp_start NAME UPSTREAM_PORT: a fault proxy; sets NAME_URL, NAME_CTL, NAME_LOG.
fp_start() {
	local name=$1 ctl=$S3B_TMP/$1.rules log=$S3B_TMP/$1.log out=$S3B_TMP/$1.out i
	echo '{"rules":[]}' > "$ctl"; : > "$log"
	python3 "$S3B_TOP/tests/lib/faultproxy.py" --listen 127.0.0.1:0 \
	    --upstream "127.0.0.1:$2" --control "$ctl" --log "$log" \
	    >"$out" 2>"$S3B_TMP/$1.err" &
	PIDS+=($!)
	for i in $(seq 1 200); do grep -qs '^listening on' "$out" && break; sleep 0.1; done
	grep -qs '^listening on' "$out" || { echo "proxy $name did not start"; return 1; }
	printf -v "${name}_URL" 'http://%s' "$(sed -n 's/^listening on //p' "$out")"
	printf -v "${name}_CTL" '%s' "$ctl"
	printf -v "${name}_LOG" '%s' "$log"
}
fp_start S3P "$RGW_PORT" && fp_start ESP "$OS_PORT" ||
    { echo "0 passed, 1 failed"; exit 1; }
ESP_PORT=${ESP_URL##*:}
faults() {	# faults s3|es JSON
	local ctl=$S3P_CTL; [ "$1" = es ] && ctl=$ESP_CTL
	printf '%s\n' "$2" > "$ctl.tmp" && mv "$ctl.tmp" "$ctl"
	sleep 0.05
}
no_faults() { faults s3 '[]'; faults es '[]'; }
# How many requests the proxy logged since the scenario began (mark).
mark() { S3_MARK=$(wc -l < "$S3P_LOG"); ES_MARK=$(wc -l < "$ESP_LOG"); }
s3_reqs() { tail -n +$((S3_MARK + 1)) "$S3P_LOG" | grep -c "${1:-.}"; }
es_reqs() { tail -n +$((ES_MARK + 1)) "$ESP_LOG" | grep -c "${1:-.}"; }

BUCKETS=()
for s in refused stall trickle 429 slowdown parts500 midbody complete etag1 \
    etagall cksum1 sync-cksum es-refused es429 es503 es503-wait es-reset \
    es-stall es-timeout es-item429 sync-es503; do BUCKETS+=("fm-$s-$RUN"); done
python3 "$FM" mkbuckets "$RGW_URL" "$FALLBACK_BUCKET" "${BUCKETS[@]}" ||
    { echo "0 passed, 1 failed"; exit 1; }

# --- a scenario: files, a faulted run, checks, a clean run, the end state ---

# setup NAME [MiB of one big file]: work dir, bucket B, 16 small files in two
# folders (two archives), maybe one big file alone (multipart, 3 parts).
setup() {
	new_work; tool_env
	export MANIFEST_FALLBACK_BUCKET=$FALLBACK_BUCKET
	B=fm-$1-$RUN LABEL=$1
	local r=$W/root/$B i
	mkdir -p "$r/logs/a" "$r/odd dir/b c"
	for i in $(seq 1 8); do
		head -c $((RANDOM % 4000 + 1)) /dev/urandom > "$r/logs/a/f$i.log"
		echo "line $i" > "$r/odd dir/b c/g $i.txt"
	done
	[ "${2:-0}" -gt 0 ] && head -c $(($2 * 1024 * 1024 + 7)) /dev/urandom > "$r/logs/big.bin"
	mkdir -p "$W/mirror"; cp -a "$r" "$W/mirror/"
	mark
}

# go TOOL s3|es|direct [env...]: one run, S3 or OpenSearch through its proxy.
# Sets RC, SECS, ERR (stderr file).
go() {
	local tool=$1 via=$2 s3=$RGW_URL esport=$OS_PORT t0; shift 2
	[ "$via" = s3 ] && s3=$S3P_URL
	[ "$via" = es ] && esport=$ESP_PORT
	ERR=$W/err.$((++NRUN))
	t0=$(date +%s.%N)
	env AWS_ENDPOINT_URL="$s3" ELASTICSEARCH_LOGS_PORT="$esport" "$@" \
	    "$S3B_BUILD/$tool" 2>"$ERR"
	RC=$?
	SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	echo "[$LABEL] $tool via $via: exit $RC in $SECS s"; sed 's/^/    /' "$ERR"
}
NRUN=0

# Every stderr line is "<tool>: error|warning: ...", at least one matches the
# pattern, at most max lines (a persistent fault: one line per object).
clear_errors() {	# tool max pattern
	local tool=$1 max=$2 pat=$3 n
	n=$(wc -l < "$ERR")
	check "$LABEL: every line is '$tool: error|warning: ...'" \
	    bash -c "! grep -vE '^$tool: (error|warning): ' '$ERR'"
	check "$LABEL: the message says '$pat'" grep -qE "$pat" "$ERR"
	check "$LABEL: at most $max lines ($n)" test "$n" -le "$max"
}
within() { check "$LABEL: done within $1 s (${SECS} s)" awk -v s="$SECS" -v m="$1" 'BEGIN { exit !(s < m) }'; }
exit_is() { check_eq "$LABEL: exit $1" "$RC" "$1"; }
work_waits() {	# s3-batch left its sealed batches, nothing in the root
	check "$LABEL: the sealed batches wait in the spool" \
	    test -n "$(ls -A "$W/spool/s3-batch/batches" 2>/dev/null)"
}
files_stay() { check_eq "$LABEL: every original stays" "$(local_files "$W/root")" "$(local_files "$W/mirror")"; }

# end_state TOOL none|all|any: the next runs (at most 2, no faults, direct)
# leave everything delivered; then the second client checks it.
end_state() {
	local tool=$1 want=$2 runs=0 line
	no_faults
	if [ "${3:-}" != asis ]; then
		go "$tool" direct; runs=1
		[ "$RC" -ne 0 ] && { go "$tool" direct; runs=2; }
		check_eq "$LABEL, fault gone: a clean run ends with exit 0 (after $runs)" "$RC" 0
	fi
	while IFS=$'\t' read -r st line; do
		if [ "$st" = ok ]; then ok "$line"; else not_ok "$line"; fi
	done < <(python3 "$FM" verify "$RGW_URL" "$ES" "$LABEL" "${tool#s3-}" "$B" \
	    "$W/mirror/$B" "$W/root" "$W/spool" "$FALLBACK_BUCKET" "$want" ||
	    echo "NOT OK	$LABEL: the check itself failed")
}

T_START=$(date +%s)

# ======================= faults between the tools and S3 ==================

# --- refused: S3's endpoint is a closed port ---
setup refused
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
go s3-batch direct AWS_ENDPOINT_URL=http://127.0.0.1:$port
exit_is 1; within 20
clear_errors s3-batch 3 "Couldn't connect|Failed to connect"
work_waits
end_state s3-batch none

# --- stall: the upload is done, its answer held 3 s, then the connection reset ---
# (S3 requests abort only under 1 KiB/s for 60 s, src/s3.c: a stall that
# long would cost this test minutes; this one ends.)
setup stall
faults s3 '[{"match":{"method":"PUT"},"action":"stall","seconds":3,"at":"response","then":"reset","count":2}]'
go s3-batch s3
exit_is 0; within 20
check "$LABEL: the two held answers were retried" test "$(s3_reqs '"method":"PUT"')" -ge 4
end_state s3-batch none

# --- trickle: the request bodies go up at 256 KiB/s ---
setup trickle 2
faults s3 '[{"match":{"method":"PUT"},"action":"trickle","direction":"request","bytes_per_second":262144}]'
go s3-batch s3
exit_is 0; within 40
check "$LABEL: it really was slow (${SECS} s for 2 MiB)" awk -v s="$SECS" 'BEGIN { exit !(s >= 4) }'
end_state s3-batch none

# --- 429 three times on PUT: retried, exit 0 ---
setup 429
faults s3 '[{"match":{"method":"PUT"},"action":"429","count":3}]'
go s3-batch s3
exit_is 0; within 20
check_eq "$LABEL: quiet under cron when retries fixed it" "$(cat "$ERR")" ""
end_state s3-batch none

# --- 503 SlowDown on every PUT: bounded, exit 1, batches wait ---
setup slowdown
faults s3 '[{"match":{"method":"PUT"},"action":"503","code":"SlowDown"}]'
go s3-batch s3
exit_is 1; within 30
clear_errors s3-batch 3 "HTTP 503 SlowDown"
n=$(s3_reqs '"method":"PUT"')
check "$LABEL: at most AWS_MAX_ATTEMPTS (5) tries per archive ($n for 2)" test "$n" -le 10
work_waits
end_state s3-batch none

# --- 500 on part 2 of a multipart upload, every time: aborted, exit 1 ---
setup parts500 11
faults s3 '[{"match":{"method":"PUT","query_re":"(^|&)partNumber=2(&|$)"},"action":"500"}]'
go s3-batch s3
exit_is 1; within 30
clear_errors s3-batch 3 "HTTP 500 InternalError"
check_eq "$LABEL: the upload was aborted" "$(s3_open_uploads "$B")" 0
check "$LABEL: the spool keeps no multipart record" test -z "$(ls -A "$W/spool/s3-batch/mpu" 2>/dev/null)"
work_waits
end_state s3-batch none

# --- a part's body cut in the middle (reset): retried, exit 0 ---
setup midbody 11
faults s3 '[{"match":{"method":"PUT","query_re":"(^|&)partNumber=2(&|$)"},"action":"reset_mid_body","count":1}]'
go s3-batch s3
exit_is 0; within 20
check "$LABEL: the cut part was sent again" test "$(s3_reqs 'partNumber=2&')" -eq 2
big=$(aws s3api list-objects-v2 --bucket "$B" --prefix logs/ --query 'Contents[?Size>`1000000`].Key' --output text)
check_eq "$LABEL: the big archive has 3 parts" "$(s3_etag "$B" "$big" | sed 's/.*-//')" 3
end_state s3-batch none

# --- CompleteMultipartUpload done, but answered 200 with <Error>, every time ---
setup complete 11
faults s3 '[{"match":{"method":"POST","query_re":"^uploadId="},"action":"body_replace","forward_first":true,
  "body":"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>"}]'
go s3-batch s3
exit_is 1; within 30
clear_errors s3-batch 3 "complete multipart.*InternalError"
n=$(s3_reqs '"method":"POST","target":"[^"]*?uploadId=')
check "$LABEL: complete tried at most 5 times ($n)" test "$n" -le 5
work_waits
end_state s3-batch none

# --- a wrong ETag once: detected, sent again, exit 0 ---
setup etag1
faults s3 '[{"match":{"method":"PUT"},"action":"header_replace","headers":{"ETag":"\"0123456789abcdef0123456789abcdef\""},"count":1}]'
go s3-batch s3
exit_is 0; within 20
check_eq "$LABEL: three PUTs for two archives" "$(s3_reqs '"method":"PUT"')" 3
# a mended retry is no news for cron: detection shows in the third PUT
check_eq "$LABEL: quiet under cron once the retry mended it" "$(cat "$ERR")" ""
end_state s3-batch none

# --- a wrong ETag every time: exit 1; S3 may hold other bytes than were sent
# (that is what a wrong ETag can mean): the next run must not trust the
# object because its size is right.
setup etagall
faults s3 '[{"match":{"method":"PUT"},"action":"header_replace","headers":{"ETag":"\"0123456789abcdef0123456789abcdef\""}}]'
go s3-batch s3
exit_is 1; within 30
clear_errors s3-batch 3 "ETag '0123456789abcdef0123456789abcdef' is not the MD5"
work_waits
python3 "$FM" corrupt "$RGW_URL" "$B" >/dev/null
end_state s3-batch none

# --- a wrong x-amz-checksum-sha256 once: detected, sent again, exit 0 ---
setup cksum1
faults s3 '[{"match":{"method":"PUT"},"action":"header_replace","headers":{"x-amz-checksum-sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"count":1}]'
go s3-batch s3
exit_is 0; within 20
check_eq "$LABEL: three PUTs for two archives" "$(s3_reqs '"method":"PUT"')" 3
check_eq "$LABEL: quiet under cron once the retry mended it" "$(cat "$ERR")" ""
end_state s3-batch none

# --- s3-sync: a wrong checksum on every answer: exit 1, the files stay ---
setup sync-cksum
faults s3 '[{"match":{"method":"PUT"},"action":"header_replace","headers":{"x-amz-checksum-sha256":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}]'
go s3-sync s3
exit_is 1; within 40
clear_errors s3-sync 18 "x-amz-checksum-sha256 'AAAA.*' is not what was sent"
files_stay
end_state s3-sync none

# ===================== faults between the tools and OpenSearch ============

# --- refused: OpenSearch's port is closed: the fallback, quickly ---
setup es-refused
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
go s3-batch direct ELASTICSEARCH_LOGS_PORT=$port
exit_is 0; within 30
clear_errors s3-batch 3 "Couldn't connect|Failed to connect"
end_state s3-batch all asis

# --- 429 on _bulk twice: retried, every document in OpenSearch ---
BULK429='{"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"},"status":429}'
setup es429
faults es '[{"match":{"method":"POST","path_re":"/_bulk$"},"action":"status","status":429,"count":2,
  "content_type":"application/json","body":'"$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$BULK429")"'}]'
go s3-batch es
exit_is 0; within 30
check_eq "$LABEL: quiet under cron" "$(cat "$ERR")" ""
check_eq "$LABEL: three _bulk requests" "$(es_reqs '"target":"/_bulk')" 3
end_state s3-batch none asis

# --- 503 on every _bulk: bounded retries, then the fallback bucket ---
setup es503
faults es '[{"match":{"method":"POST","path_re":"/_bulk$"},"action":"503"}]'
go s3-batch es
exit_is 0; within 30
clear_errors s3-batch 2 "documents not indexed.*HTTP 503"
n=$(es_reqs '"target":"/_bulk')
check "$LABEL: _bulk tried 2 to 5 times ($n)" test "$n" -ge 2 -a "$n" -le 5
end_state s3-batch all asis

# --- 503 on every _bulk and the fallback bucket missing: the manifest waits ---
setup es503-wait
faults es '[{"match":{"method":"POST","path_re":"/_bulk$"},"action":"503"}]'
go s3-batch es MANIFEST_FALLBACK_BUCKET=fm-no-such-bucket-$RUN
exit_is 1; within 30
clear_errors s3-batch 4 "stays in the spool"
work_waits
check "$LABEL: the originals are gone (archived)" test -z "$(local_files "$W/root")"
end_state s3-batch none

# --- the _bulk is indexed, then the connection is reset: sent again ---
setup es-reset
faults es '[{"match":{"method":"POST","path_re":"/_bulk$"},"action":"reset","forward_first":true,"count":2}]'
go s3-batch es
exit_is 0; within 30
check_eq "$LABEL: three _bulk requests" "$(es_reqs '"target":"/_bulk')" 3
end_state s3-batch none asis

# --- the _bulk is indexed, its answer held 4 s, then the connection closed ---
setup es-stall
faults es '[{"match":{"method":"POST","path_re":"/_bulk$"},"action":"stall","seconds":4,"at":"response","then":"close","count":1}]'
go s3-batch es
exit_is 0; within 30
check_eq "$LABEL: two _bulk requests" "$(es_reqs '"target":"/_bulk')" 2
end_state s3-batch none asis

# --- the _bulk is indexed, its answer held past the client's timeout:
# ambiguous; SPEC: retry ElasticSearch before falling back (else every
# entry is in OpenSearch and in the fallback).
if [ "${FM_SKIP_SLOW:-0}" != 1 ]; then
	setup es-timeout
	faults es '[{"match":{"method":"POST","path_re":"/_bulk$"},"action":"stall","seconds":30,"at":"response","then":"close","count":1}]'
	go s3-batch es
	exit_is 0; within 90
	# the proxy logs the held request when the stall ends (30 s, past the
	# client's 20 s timeout): wait for both lines
	for i in $(seq 1 30); do [ "$(es_reqs '"target":"/_bulk')" -ge 2 ] && break; sleep 1; done
	n=$(es_reqs '"target":"/_bulk')
	check "$LABEL: _bulk sent again after the timeout, before the fallback ($n requests)" test "$n" -ge 2
	end_state s3-batch none asis
fi

# --- every item answered 429 once, then the real server: all in OpenSearch ---
setup es-item429
faults es '[{"match":{"method":"POST","path_re":"/_bulk$"},"action":"body_replace","count":1,
  "content_type":"application/json","body":'"$(python3 "$FM" bulk429 16 | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().strip()))')"'}]'
go s3-batch es
exit_is 0; within 30
check_eq "$LABEL: quiet under cron" "$(cat "$ERR")" ""
check_eq "$LABEL: two _bulk requests" "$(es_reqs '"target":"/_bulk')" 2
end_state s3-batch none asis

# --- s3-sync: 503 on every _bulk: the fallback ---
setup sync-es503
faults es '[{"match":{"method":"POST","path_re":"/_bulk$"},"action":"503"}]'
go s3-sync es
exit_is 0; within 30
clear_errors s3-sync 2 "documents not indexed.*HTTP 503"
end_state s3-sync all asis

echo "test_faults_more: $(( $(date +%s) - T_START )) s of scenarios"
done_testing
