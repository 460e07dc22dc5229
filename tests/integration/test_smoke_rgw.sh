#!/usr/bin/env bash
# test_smoke_rgw.sh: self-test of the S3 test harness. Proves that the
# radosgw the integration tests use really checks what they rely on
# (signatures, payload hashes, Content-MD5), that virtual-hosted style works
# on <bucket>.localhost, and that the s3env.sh helpers report keys, ETags and
# multipart uploads exactly. Starts radosgw itself unless S3B_RGW_RUNNING=1.
# Last line: "N passed, N failed".
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/s3env.sh
. "$HERE/../lib/s3env.sh"

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $1"; }
# check_eq DESC WANT GOT
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: want '$2', got '$3'"; fi
}
# check DESC CMD...: passes when CMD succeeds
check() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}

TMP=$(mktemp -d)
export S3_REQ_OUT=$TMP/resp
B=$(s3_bucket_name smoke)
B2=$(s3_bucket_name smoke2)
EP=$AWS_ENDPOINT_URL

finish() {
	if [ -z "$S3ENV_STARTED_CEPH" ]; then # shared radosgw: tidy up
		s3_rb_force "$B" >/dev/null 2>&1
		s3_as_user2 s3_rb_force "$B2" >/dev/null 2>&1
	fi
	ceph_stop >/dev/null
	rm -rf "$TMP"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}
trap 'not_ok "interrupted"; finish' INT TERM

if ! ceph_start; then
	not_ok "radosgw starts"
	finish
fi
check_eq "radosgw answers anonymous GET /" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$EP/")"
check "s3_mb creates the bucket" s3_mb "$B"
check "s3_exists sees it" s3_exists "$B"

printf 'hello radosgw\n' >"$TMP/body"
printf 'something else\n' >"$TMP/other"
md5=$(md5sum <"$TMP/body" | cut -d' ' -f1)

# --- signatures -----------------------------------------------------------
check_eq "signed PUT with the real payload hash" "200 -" \
    "$(s3_req PUT "$EP/$B/signed" "$TMP/body")"
check "s3_get returns the same bytes" s3_get "$B" signed "$TMP/got"
check "  ... byte for byte" cmp -s "$TMP/body" "$TMP/got"
check_eq "s3_etag is the body's MD5" "$md5" "$(s3_etag "$B" signed)"

# Capture one good signed request, then replay it as is (the control),
# with one hex digit of the signature changed, and with a signed header
# changed.
sha=$(s3_sha256 "$TMP/body")
s3_curl -v -X PUT -H "x-amz-content-sha256: $sha" -H 'x-amz-meta-s3b: one' \
    -H 'Content-Type: text/plain' --data-binary "@$TMP/body" -o /dev/null \
    "$EP/$B/replayed" 2>"$TMP/trace"
auth=$(sed -n 's/^> Authorization: //Ip' "$TMP/trace" | tr -d '\r')
date=$(sed -n 's/^> x-amz-date: //Ip' "$TMP/trace" | tr -d '\r')
replay() { # AUTH META: prints "STATUS CODE"
	local st code
	st=$(curl -sS -X PUT -H "Authorization: $1" -H "x-amz-date: $date" \
	    -H "x-amz-content-sha256: $sha" -H "x-amz-meta-s3b: $2" \
	    -H 'Content-Type: text/plain' --data-binary "@$TMP/body" \
	    -o "$TMP/replay" -w '%{http_code}' "$EP/$B/replayed")
	code=$(grep -oE '<Code>[^<]*</Code>' "$TMP/replay" | sed -E 's,</?Code>,,g')
	echo "$st ${code:--}"
}
last=${auth: -1}
case $last in 0) flip=1 ;; *) flip=0 ;; esac
check_eq "replayed signed request is accepted (control)" "200 -" \
    "$(replay "$auth" one)"
check_eq "bad signature (one hex digit changed) -> 403" \
    "403 SignatureDoesNotMatch" "$(replay "${auth%?}$flip" one)"
check_eq "signed header changed after signing -> 403" \
    "403 SignatureDoesNotMatch" "$(replay "$auth" two)"
check_eq "wrong secret key -> 403" "403 SignatureDoesNotMatch" \
    "$(AWS_SECRET_ACCESS_KEY=wrong-$S3_SECRET_KEY \
    s3_req PUT "$EP/$B/badsecret" "$TMP/body")"
check_eq "unknown access key -> 403" "403 InvalidAccessKeyId" \
    "$(AWS_ACCESS_KEY_ID=AKIAUNKNOWNKEY000000 \
    s3_req PUT "$EP/$B/badkey" "$TMP/body")"

# --- payload integrity ----------------------------------------------------
check_eq "x-amz-content-sha256 of other bytes -> 400" \
    "400 XAmzContentSHA256Mismatch" \
    "$(S3_REQ_SHA256=$(s3_sha256 "$TMP/other") \
    s3_req PUT "$EP/$B/badsha" "$TMP/body")"
check "  ... and no object was stored" eval '! s3_exists "$B" badsha'
check_eq "wrong Content-MD5 -> 400" "400 BadDigest" \
    "$(s3_req PUT "$EP/$B/badmd5" "$TMP/body" \
    -H "Content-MD5: $(openssl md5 -binary "$TMP/other" | base64)")"
check_eq "right Content-MD5 -> 200" "200 -" \
    "$(s3_req PUT "$EP/$B/goodmd5" "$TMP/body" \
    -H "Content-MD5: $(openssl md5 -binary "$TMP/body" | base64)")"

# --- virtual-hosted style -------------------------------------------------
vh="http://$B.localhost:$RGW_PORT"
check_eq "curl resolves $B.localhost to 127.0.0.1" 127.0.0.1 \
    "$(curl -s -o /dev/null -w '%{remote_ip}' "$vh/")"
check_eq "virtual-hosted PUT" "200 -" \
    "$(s3_req PUT "$vh/vhost%20key" "$TMP/body")"
check_eq "virtual-hosted GET" "200 -" "$(s3_req GET "$vh/vhost%20key")"
check "  ... returns the bytes" cmp -s "$TMP/body" "$S3_REQ_OUT"
check "  ... stored in the bucket as 'vhost key'" s3_exists "$B" "vhost key"
check_eq "virtual-hosted bad signature -> 403" "403 SignatureDoesNotMatch" \
    "$(AWS_SECRET_ACCESS_KEY=wrong s3_req GET "$vh/vhost%20key")"

# --- exact keys -----------------------------------------------------------
odd='dir one/ü € 日本 +%!(x).txt'
check "s3_put with spaces and UTF-8" s3_put "$B" "$odd" "$TMP/body"
check_eq "s3_ls_keys returns it exactly" "$odd" "$(s3_ls_keys "$B" 'dir one/')"
check_eq "curl GET of the S3-encoded key" "200 -" \
    "$(s3_req GET "$EP/$B/$(s3_uri_encode "$odd")")"
check_eq "s3_ls_keys lists every key" \
    "$(printf '%s\n' "$odd" goodmd5 replayed signed 'vhost key')" \
    "$(s3_ls_keys "$B")"

# --- multipart ------------------------------------------------------------
check_eq "s3_list_multipart: none open" 0 "$(s3_list_multipart "$B")"
up=$(aws s3api create-multipart-upload --bucket "$B" --key 'mp ü' \
    --query UploadId --output text)
check_eq "s3_list_multipart: one open" 1 "$(s3_list_multipart "$B")"
head -c 1024 /dev/zero >"$TMP/small"
check_eq "small part then a last part: EntityTooSmall (5 MiB minimum)" \
    EntityTooSmall "$(
	e1=$(aws s3api upload-part --bucket "$B" --key 'mp ü' --upload-id "$up" \
	    --part-number 1 --body "$TMP/small" --query ETag --output text)
	e2=$(aws s3api upload-part --bucket "$B" --key 'mp ü' --upload-id "$up" \
	    --part-number 2 --body "$TMP/small" --query ETag --output text)
	printf '%s' "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>$e1</ETag></Part><Part><PartNumber>2</PartNumber><ETag>$e2</ETag></Part></CompleteMultipartUpload>" >"$TMP/complete.xml"
	s3_req POST "$EP/$B/mp%20%C3%BC?uploadId=$up" "$TMP/complete.xml" |
	    cut -d' ' -f2)"

# --- second user ----------------------------------------------------------
check_eq "user 2 cannot list user 1's bucket" 1 \
    "$(s3_as_user2 s3_ls_keys "$B" >/dev/null 2>&1; echo $?)"
check "user 2 creates its own bucket" s3_as_user2 s3_mb "$B2"
check_eq "user 2 signed PUT" "200 -" \
    "$(s3_as_user2 s3_req PUT "$EP/$B2/k" "$TMP/body")"
check_eq "user 1 cannot read user 2's object" "403 AccessDenied" \
    "$(s3_req GET "$EP/$B2/k")"

# --- clean-up helper ------------------------------------------------------
check "s3_rb_force empties and removes the bucket" s3_rb_force "$B"
check "  ... bucket is gone" eval '! s3_exists "$B"'

finish
