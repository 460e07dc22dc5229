#!/usr/bin/env bash
# s3-sync through the fault proxy: failing requests, a flipped body byte,
# failing parts, an error inside a 200 answer, a server that is down. Every
# time: nothing lost, no multipart upload left open, and the payload hash
# and checksums that were sent match the bytes that were sent.
. "$S3B_TOP/tests/lib/common.sh"
SYNC=$S3B_BUILD/s3-sync
trap stop_proxy EXIT

# $1 bucket, $2 small files, $3 MiB of one multipart file (0 = none)
fill() {
	local r=$W/root/$1 i
	mkdir -p "$r/in/sub" "$W/mirror/$1"
	for i in $(seq 1 "$2"); do head -c $((RANDOM * 3)) /dev/urandom > "$r/in/sub/f$i.dat"; done
	[ "$3" -gt 0 ] && head -c $(($3 * 1024 * 1024 + 7)) /dev/urandom > "$r/in/big.bin"
	cp -a "$r/." "$W/mirror/$1/"
}

sync_env() {
	export S3BATCH_SETTLE_SECONDS=0 S3BATCH_MULTIPART_THRESHOLD_MB=12 \
	    S3BATCH_PART_SIZE_MB=5
}
# s3-sync through the proxy; the checks' own client goes straight to radosgw.
sync_via_proxy() { AWS_ENDPOINT_URL=$PROXY_URL "$SYNC" "$@"; }

# Every request that carried a body: did x-amz-content-sha256, Content-MD5
# and x-amz-checksum-sha256 describe exactly the bytes that went out?
headers_match_bodies() {
	python3 - "$PROXY_LOG" <<'PY'
import json, sys
bad = n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["method"] != "PUT" or not r.get("body") or not r["body"].get("complete"):
        continue
    h = {k.lower(): v for k, v in r["headers"]}
    b = r["body"]
    n += 1
    for name, want in (("x-amz-content-sha256", b["sha256"]), ("content-md5", b["md5"]),
                       ("x-amz-checksum-sha256", b["sha256_b64"])):
        if h.get(name) != want:
            bad += 1
            print("mismatch", r["target"], name, h.get(name), want)
print(n, "bodies checked")
sys.exit(1 if bad or n == 0 else 0)
PY
}

# --- 30% of requests fail (500, 503 SlowDown, connection reset) ---
new_work; tool_env; start_proxy 7; sync_env
b=s3b-faults-30; s3_rb $b; s3_mb $b; fill $b 60 30
set_faults '{"rules":[
 {"action":"503","code":"SlowDown","probability":0.1},
 {"action":"500","probability":0.111},
 {"action":"reset","probability":0.125}]}'
runs=0 rc=1
while [ $rc -ne 0 ] && [ $runs -lt 4 ]; do
	sync_via_proxy 2>>"$W/err"; rc=$?; runs=$((runs + 1))
	echo "run $runs: exit $rc"
done
faults=$(grep -c '"fault":{' "$PROXY_LOG"); total=$(wc -l < "$PROXY_LOG")
echo "requests $total, faults injected $faults"
check "30%: faults were injected (${faults} of ${total})" test "$faults" -gt $((total / 5))
check_eq "30%: a run ends with exit 0 (after $runs)" "$rc" 0
check_eq "30%: every file arrived" "$(s3_keys $b)" "$(local_files "$W/mirror/$b")"
check "30%: with the same bytes" check_objects_match $b "$W/mirror/$b"
check_eq "30%: nothing left locally" "$(local_files "$W/root")" ""
check_eq "30%: no multipart upload open" "$(s3_open_uploads $b)" 0
check "30%: payload hash, Content-MD5 and checksum match the bytes sent" headers_match_bodies
check "30%: failures are one-line errors naming the object" \
    bash -c "! grep ': error: ' '$W/err' | grep -qv \"^s3-sync: error: \\(PUT\\|POST\\|DELETE\\) 's3://\""
stop_proxy; s3_rb $b

# --- one flipped byte: rejected by the server, retried, then deleted ---
new_work; tool_env; start_proxy; sync_env
b=s3b-faults-flip; s3_rb $b; s3_mb $b; fill $b 1 0
set_faults '{"rules":[{"match":{"method":"PUT"},"action":"flip_byte","count":1}]}'
sync_via_proxy 2>"$W/err"; rc=$?; cat "$W/err"
check_eq "flip: exit 0" "$rc" 0
statuses=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)
    if r["method"]=="PUT" and r["target"].startswith("/"+sys.argv[2]+"/"):
        print((r.get("fault") or {}).get("action","-"), r.get("upstream_status"))' "$PROXY_LOG" $b)
echo "$statuses"
check_eq "flip: the server refused the flipped body, the retry went through" \
    "$statuses" "$(printf 'flip_byte 400\n- 200')"
check "flip: the object has the right bytes" check_objects_match $b "$W/mirror/$b"
check_eq "flip: the original is gone after the clean upload" "$(local_files "$W/root")" ""
stop_proxy; s3_rb $b

# --- every part fails: exit 1, upload aborted, nothing lost; then it goes ---
new_work; tool_env; start_proxy; sync_env
b=s3b-faults-parts; s3_rb $b; s3_mb $b; fill $b 0 25
set_faults '{"rules":[{"match":{"method":"PUT","query_re":"partNumber=3"},"action":"500"}]}'
sync_via_proxy 2>"$W/err"; rc=$?; cat "$W/err"
check_eq "parts failing: exit 1" "$rc" 1
check_eq "parts failing: the file stays" "$(local_files "$W/root")" "$b/in/big.bin"
check_eq "parts failing: no multipart upload left open" "$(s3_open_uploads $b)" 0
check_eq "parts failing: no object" "$(s3_keys $b)" ""
check "parts failing: the spool holds no record" test -z "$(ls -A "$W/spool/s3-sync/mpu")"
check "parts failing: the error names the part and the status" grep -q "HTTP 500 InternalError" "$W/err"
set_faults '{"rules":[]}'
sync_via_proxy 2>"$W/err"; rc=$?
check_eq "parts failing, fault gone: exit 0" "$rc" 0
check "parts failing, fault gone: the object is whole" check_objects_match $b "$W/mirror/$b"
check_eq "parts failing, fault gone: ETag of 6 parts" "$(s3_etag $b in/big.bin | sed 's/.*-//')" 6
stop_proxy; s3_rb $b

# --- CompleteMultipartUpload answered 200 with an <Error> body ---
new_work; tool_env; start_proxy; sync_env
b=s3b-faults-complete; s3_rb $b; s3_mb $b; fill $b 0 13
set_faults '{"rules":[{"match":{"method":"POST","query_re":"uploadId="},"action":"body_replace","count":1,
  "body":"<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>try again</Message></Error>"}]}'
sync_via_proxy 2>"$W/err"; rc=$?; cat "$W/err"
check_eq "error in a 200: exit 0 after the retry" "$rc" 0
check "error in a 200: the object is whole" check_objects_match $b "$W/mirror/$b"
check_eq "error in a 200: no multipart upload open" "$(s3_open_uploads $b)" 0
stop_proxy; s3_rb $b

# --- the server is down: a clear error, exit 1, quickly, nothing deleted ---
new_work; tool_env
b=s3b-faults-down; fill $b 300 0
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
t0=$(date +%s)
AWS_ENDPOINT_URL=http://127.0.0.1:$port S3BATCH_SETTLE_SECONDS=0 "$SYNC" 2>"$W/err"; rc=$?
secs=$(( $(date +%s) - t0 )); head -3 "$W/err"
check_eq "server down: exit 1" "$rc" 1
check "server down: gives up within 60 s (${secs} s)" test "$secs" -lt 60
check "server down: says it could not connect" grep -qi "connect" "$W/err"
check_eq "server down: nothing deleted" "$(local_files "$W/root")" "$(local_files "$W/mirror")"
check "server down: it says once that S3 does not answer" test "$(grep -c 'S3 does not answer' "$W/err")" = 1
check "server down: a short mail for cron ($(wc -l < "$W/err") lines for 300 files)" test "$(wc -l < "$W/err")" -le 25

# --- a bucket in another region: S3 redirects, the client signs again ---
new_work; tool_env; start_proxy; sync_env
b=s3b-faults-region; s3_rb $b; s3_mb $b; fill $b 1 0
set_faults '{"rules":[{"match":{"method":"PUT"},"action":"status","status":301,"count":1,
  "code":"PermanentRedirect","headers":{"x-amz-bucket-region":"eu-west-3"}}]}'
sync_via_proxy -vv 2>"$W/err"; rc=$?; cat "$W/err"
check_eq "region: exit 0" "$rc" 0
check "region: the client says it signs again" grep -q "region 'eu-west-3'" "$W/err"
scopes=$(python3 -c 'import json,sys,re
for l in open(sys.argv[1]):
    r=json.loads(l)
    if r["method"]!="PUT" or not r["target"].startswith("/"+sys.argv[2]+"/"): continue
    a=dict((k.lower(),v) for k,v in r["headers"])["authorization"]
    print(re.search(r"/(\w+-\w+-\d)/s3/", a).group(1))' "$PROXY_LOG" $b | sort | uniq -c | awk '{print $2"="$1}' | tr '\n' ' ')
check_eq "region: signed for us-east-1, redirected, signed again for eu-west-3" "$scopes" "eu-west-3=1 us-east-1=1 "
check "region: the objects are whole" check_objects_match $b "$W/mirror/$b"
stop_proxy; s3_rb $b

done_testing
