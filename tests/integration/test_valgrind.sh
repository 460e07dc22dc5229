#!/usr/bin/env bash
# Both tools under valgrind on a real run (multipart, several archives,
# ElasticSearch down so the fallback path runs too): no memory error, no
# definite leak.
. "$S3B_TOP/tests/lib/common.sh"
VG="valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99"
new_work; tool_env
export ELASTICSEARCH_LOGS_PORT=9 MAX_BATCH_SIZE_MB=1 S3BATCH_SETTLE_SECONDS=0 \
    S3BATCH_MULTIPART_THRESHOLD_MB=5 S3BATCH_PART_SIZE_MB=5
s3_rb "$MANIFEST_FALLBACK_BUCKET"; s3_mb "$MANIFEST_FALLBACK_BUCKET"
b=s3b-valgrind; s3_rb $b; s3_mb $b
for tool in s3-batch s3-sync; do
	mkdir -p "$W/root/$b/$tool"
	for i in $(seq 1 8); do echo "$tool $i" > "$W/root/$b/$tool/f$i"; done
	head -c $((6 * 1024 * 1024)) /dev/urandom > "$W/root/$b/$tool/big.bin"
	$VG "$S3B_BUILD/$tool" 2>"$W/err"; rc=$?; cat "$W/err"
	check_eq "$tool under valgrind: exit 0, no error" "$rc" 0
	check_eq "$tool under valgrind: every file taken" "$(local_files "$W/root/$b/$tool")" ""
done
s3_rb $b
done_testing
