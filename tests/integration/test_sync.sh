#!/usr/bin/env bash
# s3-sync against the real radosgw: odd names, empty, 20 MiB and multipart
# files, path-style and virtual-hosted addressing, what stays local (open,
# young, ignored), a wrong secret, the run lock and a configuration error.
. "$S3B_TOP/tests/lib/common.sh"
SYNC=$S3B_BUILD/s3-sync

# Fill $W/root/$1 and a mirror of what should be uploaded in $W/mirror/$1.
make_tree() {
	local b=$1 r=$W/root/$1 m=$W/mirror/$1
	mkdir -p "$r/a/b/c" "$r/dir with spaces" "$r/ünïcödé/日本" "$m"
	echo "top" > "$r/top.txt"
	: > "$r/a/empty"
	echo "deep" > "$r/a/b/c/deep.txt"
	printf 'odd %s\n' 1 > "$r/dir with spaces/name with spaces.txt"
	printf 'odd %s\n' 2 > "$r/ünïcödé/日本/ファイル.txt"
	printf 'odd %s\n' 3 > "$r/a/plus+equals=amp&q?hash#pct%tilde~.txt"
	head -c $((20 * 1024 * 1024)) /dev/urandom > "$r/a/twenty.bin"
	head -c $((27 * 1024 * 1024 + 123)) /dev/urandom > "$r/a/b/multi.bin"
	cp -a "$r/." "$m/"
}

# Files that must stay: an ignored name, one held open, one too young.
add_stay_files() {
	local r=$W/root/$1
	echo partial > "$r/a/upload.filepart"
	echo held > "$r/a/held-open.txt"
	# another process holds it open, as an FTP server writing it would
	bash -c "exec 3<'$r/a/held-open.txt'; exec sleep 120" &
	HOLDER=$!
}

run_scenario() {	# bucket, addressing style, endpoint
	local b=$1 style=$2 ep=$3 rc keys want
	new_work; tool_env
	s3_rb "$b"; s3_mb "$b"
	make_tree "$b"
	add_stay_files "$b"
	sleep 3
	echo young > "$W/root/$b/a/young.txt"
	S3BATCH_ADDRESSING_STYLE=$style AWS_ENDPOINT_URL=$ep \
	S3BATCH_SETTLE_SECONDS=2 S3BATCH_MULTIPART_THRESHOLD_MB=25 \
	S3BATCH_PART_SIZE_MB=5 "$SYNC" -v 2>"$W/err"
	rc=$?
	kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null
	cat "$W/err"
	check_eq "$style: exit status" "$rc" 0
	keys=$(s3_keys "$b")
	want=$(local_files "$W/mirror/$b")
	check_eq "$style: keys in S3 are the files' keys" "$keys" "$want"
	check "$style: every object has the file's bytes" check_objects_match "$b" "$W/mirror/$b"
	etag=$(s3_etag "$b" a/b/multi.bin)
	check_eq "$style: the 27 MiB file went up in 6 parts" "${etag##*-}" 6
	etag=$(s3_etag "$b" a/twenty.bin)
	check "$style: the 20 MiB file went up in one PUT ($etag)" test "${etag%-*}" = "$etag"
	check_eq "$style: what stays local" "$(local_files "$W/root/$b")" \
	    "$(printf 'a/held-open.txt\na/upload.filepart\na/young.txt')"
	check_eq "$style: no multipart upload left open" "$(s3_open_uploads "$b")" 0
	check "$style: the spool records no multipart upload" \
	    test -z "$(ls -A "$W/spool/s3-sync/mpu")"
	s3_rb "$b"
}

run_scenario s3b-sync-path path "$RGW_URL"
run_scenario s3b-sync-vhost virtual "http://localhost:$RGW_PORT"
run_scenario s3b-sync-auto auto "$RGW_URL"

# A wrong secret: exit 1, S3's error code said, nothing deleted.
new_work; tool_env
b=s3b-sync-badkey; s3_rb $b; s3_mb $b
mkdir -p "$W/root/$b/d"; for i in 1 2 3; do echo $i > "$W/root/$b/d/f$i"; done
before=$(local_files "$W/root")
AWS_SECRET_ACCESS_KEY=wrong-secret-key S3BATCH_SETTLE_SECONDS=0 "$SYNC" 2>"$W/err"
rc=$?; cat "$W/err"
check_eq "wrong secret: exit 1" "$rc" 1
check "wrong secret: S3's error code is in the message" grep -q SignatureDoesNotMatch "$W/err"
check "wrong secret: the secret is not in the message" bash -c "! grep -q wrong-secret-key '$W/err'"
check_eq "wrong secret: no local file deleted" "$(local_files "$W/root")" "$before"
check_eq "wrong secret: nothing in the bucket" "$(s3_keys $b)" ""

# The lock: a second run while the lock is held exits 75 at once.
mkdir -p "$W/spool/s3-sync"
flock -o "$W/spool/s3-sync/lock" sleep 5 &
holder=$!; sleep 0.5
t0=$(date +%s%N)
"$SYNC" 2>"$W/err"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill $holder 2>/dev/null; wait $holder 2>/dev/null
check_eq "lock held: exit 75" "$rc" 75
check "lock held: exits at once (${ms} ms)" test "$ms" -lt 1000
check_eq "lock held: nothing uploaded" "$(s3_keys $b)" ""
# After the holder is gone (killed), the next run proceeds.
S3BATCH_SETTLE_SECONDS=0 "$SYNC" 2>"$W/err"; rc=$?
check_eq "lock released by a killed holder: the next run works" "$rc" 0
check_eq "then every file is in S3" "$(s3_keys $b)" "$(printf 'd/f1\nd/f2\nd/f3')"
s3_rb $b

# Configuration errors: one line naming the variable, exit 78, nothing touched.
new_work; tool_env; mkdir -p "$W/root/x-bucket"; echo 1 > "$W/root/x-bucket/f"
(unset ELASTICSEARCH_LOGS_HOST; "$SYNC" 2>"$W/err"); rc=$?
check_eq "missing ELASTICSEARCH_LOGS_HOST: exit 78" "$rc" 78
check "missing ELASTICSEARCH_LOGS_HOST: named in one line" \
    test "$(grep -c ELASTICSEARCH_LOGS_HOST "$W/err")" = 1 -a "$(wc -l < "$W/err")" = 1
S3BATCH_CONCURRENCY=lots "$SYNC" 2>"$W/err"; rc=$?
check_eq "bad S3BATCH_CONCURRENCY: exit 78" "$rc" 78
check "bad S3BATCH_CONCURRENCY: named" grep -q "S3BATCH_CONCURRENCY: 'lots'" "$W/err"
check "configuration error: the file is still there" test -f "$W/root/x-bucket/f"
check "configuration error: no spool made" test ! -e "$W/spool/s3-sync"
"$SYNC" --bogus 2>/dev/null; check_eq "unknown flag: exit 64" "$?" 64

# Storage class and server-side encryption headers reach S3.
new_work; tool_env
b=s3b-sync-class; s3_rb $b; s3_mb $b
mkdir -p "$W/root/$b"; echo cold > "$W/root/$b/cold.txt"
S3BATCH_SETTLE_SECONDS=0 S3BATCH_STORAGE_CLASS=STANDARD_IA S3BATCH_SSE=aws:kms \
    S3BATCH_SSE_KMS_KEY_ID=s3b-test-key "$SYNC" 2>"$W/err"; rc=$?; cat "$W/err"
check_eq "storage class + SSE-KMS: exit 0" "$rc" 0
head=$(aws s3api head-object --bucket $b --key cold.txt --output json)
echo "$head"
check "storage class: STANDARD_IA" grep -q '"StorageClass": "STANDARD_IA"' <<<"$head"
check "SSE: aws:kms" grep -q '"ServerSideEncryption": "aws:kms"' <<<"$head"
s3_rb $b

done_testing
