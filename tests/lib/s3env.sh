# s3env.sh: sourced by the integration tests (bash). Points the AWS
# environment at the test radosgw on 127.0.0.1 and defines helpers that check
# results with a second client (awscli) or with curl's own SigV4 signer.
#
# Every helper returns non-zero on failure and never exits the caller.
# Keys of user 1 are in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; the helpers
# use whatever those hold when called, so `s3_as_user2 s3_mb b` works.
#
# Runner contract: S3B_RGW_RUNNING=1 means the runner has started radosgw for
# the whole suite (with this same environment): ceph_start and ceph_stop then
# do nothing.

S3ENV_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

export CEPH_ROOT=${CEPH_ROOT:-/tmp/s3b-ceph}
export RGW_PORT=${RGW_PORT:-7480}
export S3_ACCESS_KEY=${S3_ACCESS_KEY:-AKIAIOSFODNN7EXAMPLE}
export S3_SECRET_KEY=${S3_SECRET_KEY:-wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY}
export S3_ACCESS_KEY2=${S3_ACCESS_KEY2:-AKIAS3BTESTUSER2KEY0}
export S3_SECRET_KEY2=${S3_SECRET_KEY2:-s3bSecondUserSecretKey0000000000EXAMPLE2}

# User 2 is a separate radosgw account: it cannot read or write user 1's
# buckets. Hand these to credential stand-ins (IMDS, ECS, STS) and create the
# test's bucket as user 2: an upload that works proves which keys were used.
export S3B_USER2_ACCESS_KEY_ID=$S3_ACCESS_KEY2
export S3B_USER2_SECRET_ACCESS_KEY=$S3_SECRET_KEY2

export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$RGW_PORT
# Nothing from the invoking user's ~/.aws or shell may leak into a test, and
# nothing may go to the real instance metadata address: tests that need
# these set them to their own files and stand-ins.
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL_S3 AWS_CA_BUNDLE \
    AWS_MAX_ATTEMPTS AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN \
    AWS_ROLE_SESSION_NAME AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
    AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN \
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE AWS_EC2_METADATA_SERVICE_ENDPOINT \
    http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
export NO_PROXY='127.0.0.1,localhost,.localhost'

# ---- radosgw ---------------------------------------------------------------

S3ENV_STARTED_CEPH=

# ceph_start: starts a fresh radosgw (wiping one left on CEPH_ROOT) unless
# the runner already did (S3B_RGW_RUNNING=1); then only checks it answers.
ceph_start() {
	if [ "${S3B_RGW_RUNNING:-0}" = 1 ]; then
		curl -s -o /dev/null --max-time 5 "$AWS_ENDPOINT_URL/" && return 0
		echo "s3env: S3B_RGW_RUNNING=1 but nothing answers on" \
		    "$AWS_ENDPOINT_URL" >&2
		return 1
	fi
	"$S3ENV_LIB/ceph.sh" start || return 1
	S3ENV_STARTED_CEPH=1
}

# ceph_stop: stops radosgw if ceph_start started it.
ceph_stop() {
	[ -n "$S3ENV_STARTED_CEPH" ] || return 0
	S3ENV_STARTED_CEPH=
	"$S3ENV_LIB/ceph.sh" stop
}

# ---- awscli as the second client -------------------------------------------

# _s3_aws ARGS...: aws with flexible checksums off (the radosgw here predates
# them) and --debug kept aside. radosgw's error bodies have an empty
# <Message>, on which awscli 1.x crashes ("argument of type 'NoneType' is
# not iterable", exit 255): on failure print the HTTP status and S3 error
# code of the last response instead.
_s3_aws() {
	local dbg rc
	dbg=$(mktemp) || return 1
	AWS_REQUEST_CHECKSUM_CALCULATION=when_required \
	AWS_RESPONSE_CHECKSUM_VALIDATION=when_required \
	PYTHONUTF8=1 aws --debug "$@" 2>"$dbg"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		printf 'aws %s: exit %d: %s %s: %s\n' "$*" "$rc" \
		    "$(grep -oE '"[A-Z]+ [^"]*" [0-9]{3}' "$dbg" | tail -1)" \
		    "$(grep -oE '<Code>[^<]*</Code>' "$dbg" | tail -1 |
		    sed -E 's,</?Code>,,g')" \
		    "$(grep -vE '^[0-9]{4}-[0-9]{2}-[0-9]{2} |^b?'"'"'|^$' \
		    "$dbg" | tail -1)" >&2
	fi
	rm -f "$dbg"
	return "$rc"
}

# s3_mb BUCKET: creates BUCKET (us-east-1, no location constraint).
s3_mb() {
	_s3_aws s3api create-bucket --bucket "$1" >/dev/null
}

# s3_exists BUCKET [KEY]: status 0 if the bucket (or the object) exists and
# the current keys may see it (HEAD: no error body, so no awscli crash).
s3_exists() {
	if [ $# -ge 2 ]; then
		aws s3api head-object --bucket "$1" --key "$2" \
		    >/dev/null 2>&1
	else
		aws s3api head-bucket --bucket "$1" >/dev/null 2>&1
	fi
}

# s3_rb_force BUCKET: deletes every object, aborts every open multipart
# upload, then deletes the bucket. A bucket that does not exist (or that the
# current keys cannot see) is left alone with status 0. Not for versioned
# buckets.
s3_rb_force() {
	local b=$1 ids line key id
	s3_exists "$b" || return 0
	_s3_aws s3 rm --recursive --only-show-errors "s3://$b" || return 1
	ids=$(_s3_aws s3api list-multipart-uploads --bucket "$b" \
	    --output json | jq -c '.Uploads[]? | [.Key, .UploadId]') ||
	    return 1
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		key=$(printf '%s' "$line" | jq -r '.[0]')
		id=$(printf '%s' "$line" | jq -r '.[1]')
		_s3_aws s3api abort-multipart-upload --bucket "$b" \
		    --key "$key" --upload-id "$id" || return 1
	done <<<"$ids"
	_s3_aws s3api delete-bucket --bucket "$b"
}

# s3_ls_keys BUCKET [PREFIX]: every key (all pages, recursive), one per line,
# byte for byte (spaces, UTF-8, '%', '+', '//' kept; only a newline inside a
# key would be ambiguous), in S3's listing order (UTF-8 byte order). Nothing
# for an empty bucket; status 1 if the listing fails.
s3_ls_keys() {
	local out
	out=$(_s3_aws s3api list-objects-v2 --bucket "$1" \
	    ${2:+--prefix "$2"} --query 'Contents[].Key' --output json) ||
	    return 1
	printf '%s' "$out" | jq -r '.[]?'
}

# s3_count BUCKET [PREFIX]: number of objects.
s3_count() {
	local out
	out=$(_s3_aws s3api list-objects-v2 --bucket "$1" \
	    ${2:+--prefix "$2"} --query 'length(Contents || `[]`)' \
	    --output json) || return 1
	printf '%s\n' "$out"
}

# s3_get BUCKET KEY FILE: downloads the object to FILE.
s3_get() {
	_s3_aws s3api get-object --bucket "$1" --key "$2" "$3" >/dev/null
}

# s3_put BUCKET KEY FILE: uploads FILE as one PUT (no multipart).
s3_put() {
	_s3_aws s3api put-object --bucket "$1" --key "$2" --body "$3" \
	    >/dev/null
}

# s3_head BUCKET KEY: the HeadObject answer as JSON (ContentLength,
# ETag, Metadata, ServerSideEncryption, StorageClass...).
s3_head() {
	_s3_aws s3api head-object --bucket "$1" --key "$2" --output json
}

# s3_etag BUCKET KEY: the object's ETag without its double quotes
# ("<md5>" for a single PUT, "<md5-of-md5s>-<parts>" for multipart).
s3_etag() {
	local out
	out=$(_s3_aws s3api head-object --bucket "$1" --key "$2" \
	    --query ETag --output text) || return 1
	out=${out#\"}
	printf '%s\n' "${out%\"}"
}

# s3_list_multipart BUCKET: number of open (not completed, not aborted)
# multipart uploads.
s3_list_multipart() {
	local out
	out=$(_s3_aws s3api list-multipart-uploads --bucket "$1" \
	    --output json) || return 1
	[ -n "$out" ] || out='{}'
	printf '%s' "$out" | jq '[.Uploads[]?] | length'
}

# s3_as_user2 CMD...: runs CMD (a helper or a program) with user 2's keys.
s3_as_user2() {
	(
		export AWS_ACCESS_KEY_ID=$S3B_USER2_ACCESS_KEY_ID
		export AWS_SECRET_ACCESS_KEY=$S3B_USER2_SECRET_ACCESS_KEY
		"$@"
	)
}

# s3_bucket_name [PREFIX]: a fresh valid bucket name, e.g. "t-smoke-4711-a1b2".
s3_bucket_name() {
	local p
	p=$(printf '%s' "${1:-t}" | tr 'A-Z_' 'a-z-' | tr -cd 'a-z0-9-' |
	    cut -c1-40)
	printf '%s-%d-%04x\n' "$p" "$$" "$((RANDOM))"
}

# ---- curl's own SigV4 signer, for raw requests -------------------------------

# s3_curl CURL-ARGS...: curl signing with SigV4 for region AWS_REGION,
# service s3, and the keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (passed
# through a config file, not argv). curl 7.88 does not add
# x-amz-content-sha256 and radosgw refuses requests without it: pass it with
# -H (s3_req does); curl then signs that value as the payload hash. Do not
# remove a header with -H 'Name:': curl 7.88 still signs it, and radosgw
# answers 403 SignatureDoesNotMatch. -T FILE appends FILE's name to a URL
# that ends in '/'.
s3_curl() {
	curl -sS --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" \
	    --config <(printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" \
	    "$AWS_SECRET_ACCESS_KEY") "$@"
}

# s3_sha256 FILE: hex SHA-256 of FILE ('' or '-' for an empty body).
s3_sha256() {
	if [ -z "${1:-}" ] || [ "$1" = - ]; then
		printf '' | sha256sum | cut -d' ' -f1
	else
		sha256sum <"$1" | cut -d' ' -f1
	fi
}

# s3_uri_encode KEY: KEY encoded for a URL path as S3 expects: every byte
# but A-Z a-z 0-9 - _ . ~ percent-encoded, '/' kept.
s3_uri_encode() {
	python3 -c 'import os, sys, urllib.parse as u
print(u.quote(os.fsencode(sys.argv[1]), safe="/"))' "$1"
}

# s3_req METHOD URL [BODYFILE [CURL-ARGS...]]: one signed request whose
# x-amz-content-sha256 is BODYFILE's real hash (or $S3_REQ_SHA256 when set,
# to lie about it). Prints "STATUS CODE": the HTTP status and the XML error
# <Code>, or "-" when the answer has none, e.g. "200 -",
# "403 SignatureDoesNotMatch". The response body is left in $S3_REQ_OUT
# (default: a file under ${TMPDIR:-/tmp}; set it to the test's own
# directory), its headers in $S3_REQ_OUT.hdr.
s3_req() {
	local method=$1 url=$2 body=${3:-} sha status code
	shift 2
	[ $# -eq 0 ] || shift
	: "${S3_REQ_OUT:=${TMPDIR:-/tmp}/s3_req.$$.out}"
	sha=${S3_REQ_SHA256:-$(s3_sha256 "$body")}
	if [ -n "$body" ] && [ "$body" != - ]; then
		set -- --data-binary "@$body" \
		    -H 'Content-Type: application/octet-stream' "$@"
	fi
	status=$(s3_curl -X "$method" -H "x-amz-content-sha256: $sha" \
	    -o "$S3_REQ_OUT" -D "$S3_REQ_OUT.hdr" -w '%{http_code}' \
	    "$@" "$url") || return 1
	code=$(grep -oE '<Code>[^<]*</Code>' "$S3_REQ_OUT" | head -1 |
	    sed -E 's,</?Code>,,g')
	printf '%s %s\n' "$status" "${code:--}"
}

# ---- running tests -----------------------------------------------------------

# s3b_run_test SECONDS CMD...: runs CMD with a time limit (SIGTERM at
# SECONDS, SIGKILL 10 s later, the whole process group). Returns CMD's status,
# or 124 with a "TIMEOUT" line on timeout; a radosgw the timed-out test
# started itself is stopped then.
s3b_run_test() {
	local secs=$1 rc
	shift
	timeout --kill-after=10 "$secs" "$@"
	rc=$?
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "TIMEOUT: $* after ${secs}s"
		[ "${S3B_RGW_RUNNING:-0}" = 1 ] ||
		    "$S3ENV_LIB/ceph.sh" stop >/dev/null 2>&1
		rc=124
	fi
	return "$rc"
}
