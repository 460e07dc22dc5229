#!/usr/bin/env bash
# s3-sync with credentials from each source of the chain. The AWS-only
# endpoints (IMDSv2, ECS, STS) are local stand-ins that hand out the real
# keys of a second radosgw user, so every upload is verified by radosgw.
. "$S3B_TOP/tests/lib/common.sh"
SYNC=$S3B_BUILD/s3-sync
AK2=${S3_ACCESS_KEY2:-AKIAS3BTESTUSER2KEY0}
SK2=${S3_SECRET_KEY2:-s3bSecondUserSecretKey0000000000EXAMPLE2}
as_user2() { AWS_ACCESS_KEY_ID=$AK2 AWS_SECRET_ACCESS_KEY=$SK2 "$@"; }

new_work
# user 2's own fallback bucket: the manifests go there (ElasticSearch is down)
as_user2 s3_rb s3b-creds-fallback; as_user2 s3_mb s3b-creds-fallback
echo "the-web-identity-token" > "$W/token"
coproc STANDIN { exec python3 "$S3B_TOP/tests/lib/aws_standins.py" --port 0 \
    --access-key "$AK2" --secret-key "$SK2" --expires-in 3600 \
    --ecs-auth "ecs-secret-auth" --web-identity-token-file "$W/token" \
    --role-arn arn:aws:iam::123456789012:role/s3b; }
read -r -t 20 line <&"${STANDIN[0]}"
STANDIN_URL=http://${line#listening on }
trap 'kill $STANDIN_PID 2>/dev/null' EXIT
echo "stand-ins at $STANDIN_URL"
stats() { curl -s "$STANDIN_URL/_stats"; }

# Runs s3-sync with no keys in the environment, only what "$@" sets.
sync_with() {
	local b=$1; shift
	mkdir -p "$W/root/$b/d"; echo "$b" > "$W/root/$b/d/file.txt"
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
	    S3_SYNC_BUCKETS_FOLDER="$W/root" S3BATCH_SPOOL_DIR="$W/spool" \
	    ELASTICSEARCH_LOGS_HOST=127.0.0.1 ELASTICSEARCH_LOGS_PORT=9 \
	    MANIFEST_FALLBACK_BUCKET=s3b-creds-fallback S3BATCH_SETTLE_SECONDS=0 \
	    HOME="$W" "$@" "$SYNC" 2>"$W/err"
}

source_case() {	# name, env assignments...
	local name=$1; shift
	local b=s3b-creds-$name rc
	as_user2 s3_rb $b; as_user2 s3_mb $b
	sync_with $b "$@"; rc=$?; cat "$W/err"
	check_eq "$name: exit 0" "$rc" 0
	check_eq "$name: the object is in user 2's bucket" \
	    "$(as_user2 s3_keys $b)" "d/file.txt"
	check_eq "$name: the original is gone" "$(ls "$W/root/$b/d")" ""
	as_user2 s3_rb $b
}

source_case imds AWS_EC2_METADATA_DISABLED=false \
    AWS_EC2_METADATA_SERVICE_ENDPOINT="$STANDIN_URL"
check "imds: token first (PUT /latest/api/token seen)" bash -c "curl -s $STANDIN_URL/_stats | grep -q token"
source_case ecs AWS_CONTAINER_CREDENTIALS_FULL_URI="$STANDIN_URL/v2/credentials/x" \
    AWS_CONTAINER_AUTHORIZATION_TOKEN=ecs-secret-auth
source_case web-identity AWS_WEB_IDENTITY_TOKEN_FILE="$W/token" \
    AWS_ROLE_ARN=arn:aws:iam::123456789012:role/s3b AWS_ENDPOINT_URL_STS="$STANDIN_URL"
mkdir -p "$W/aws"
printf '[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n[ingest]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
    "$AK2" "$SK2" > "$W/aws/credentials"
source_case profile AWS_SHARED_CREDENTIALS_FILE="$W/aws/credentials" AWS_PROFILE=ingest
echo "stand-in counts: $(stats)"

# No source at all: an error naming what was tried, exit 1, nothing deleted.
b=s3b-creds-none; mkdir -p "$W/root/$b"; echo x > "$W/root/$b/keep"
sync_with $b AWS_EC2_METADATA_DISABLED=true; rc=$?; cat "$W/err"
check_eq "no credentials: exit 1" "$rc" 1
check "no credentials: the message says which sources were tried" grep -q "no AWS credentials" "$W/err"
check "no credentials: the file stays" test -f "$W/root/$b/keep"
done_testing
