#!/usr/bin/env bash
# demo.sh: s3-sync on a small local tree against a throwaway radosgw on
# 127.0.0.1, then what the bucket holds. Stops the server at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
demo=$(mktemp -d /tmp/s3b-demo.XXXXXX)
export CEPH_ROOT=$demo/ceph RGW_PORT=${RGW_PORT:-7480}
trap '"$top/tests/lib/ceph.sh" stop >/dev/null 2>&1; rm -rf "$demo"' EXIT

echo "== starting a single-node Ceph radosgw on 127.0.0.1:$RGW_PORT"
"$top/tests/lib/ceph.sh" start >/dev/null
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY
export AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$RGW_PORT
export AWS_EC2_METADATA_DISABLED=true
aws s3api create-bucket --bucket demo-bucket >/dev/null

echo "== files dropped into the bucket folder demo-bucket/"
root=$demo/buckets
mkdir -p "$root/demo-bucket/logs/2026/11" "$root/demo-bucket/reports"
for i in 1 2 3; do echo "log line $i" > "$root/demo-bucket/logs/2026/11/app-$i.log"; done
echo "quarterly numbers" > "$root/demo-bucket/reports/q4 summary.txt"
head -c $((40 * 1024 * 1024)) /dev/urandom > "$root/demo-bucket/reports/big.bin"
echo "still being uploaded" > "$root/demo-bucket/reports/incoming.filepart"
(cd "$root" && find . -type f | sort)

echo "== s3-sync -vv (one line per file)"
S3_SYNC_BUCKETS_FOLDER=$root S3BATCH_SPOOL_DIR=$demo/spool \
ELASTICSEARCH_LOGS_HOST=127.0.0.1 ELASTICSEARCH_LOGS_PORT=9200 \
MANIFEST_FALLBACK_BUCKET=demo-manifests S3BATCH_SETTLE_SECONDS=0 \
S3BATCH_MULTIPART_THRESHOLD_MB=16 \
    "$top/build/s3-sync" -vv && echo "(exit status 0: everything delivered)"

echo "== left in the bucket folder (an ignored temporary name):"
(cd "$root" && find . -type f | sort)
echo "== objects in s3://demo-bucket (listed by awscli, a second client):"
aws s3 ls --recursive s3://demo-bucket/
echo "== the 40 MiB file went up in parts; its ETag says how many:"
aws s3api head-object --bucket demo-bucket --key reports/big.bin --query ETag --output text
