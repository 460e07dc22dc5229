#!/usr/bin/env bash
# demo.sh: both tools on a small local tree, against a throwaway radosgw
# and OpenSearch on 127.0.0.1; then what the bucket and the index hold.
# Stops both servers at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
demo=$(mktemp -d /tmp/s3b-demo.XXXXXX)
export CEPH_ROOT=$demo/ceph RGW_PORT=${RGW_PORT:-7480}
export OS_ROOT=$demo/os OS_PORT=${OS_PORT:-9200}
stop() {
	"$top/tests/lib/ceph.sh" stop >/dev/null 2>&1
	"$top/tests/lib/opensearch.sh" stop >/dev/null 2>&1
	rm -rf "$demo"
}
trap stop EXIT

echo "== starting radosgw on 127.0.0.1:$RGW_PORT and OpenSearch on 127.0.0.1:$OS_PORT"
"$top/tests/lib/ceph.sh" start >/dev/null
"$top/tests/lib/opensearch.sh" start >/dev/null
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE
export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY
export AWS_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:$RGW_PORT
export AWS_EC2_METADATA_DISABLED=true
aws s3api create-bucket --bucket demo-bucket >/dev/null
aws s3api create-bucket --bucket demo-manifests >/dev/null
export S3BATCH_SPOOL_DIR=$demo/spool S3BATCH_SETTLE_SECONDS=0 \
    ELASTICSEARCH_LOGS_HOST=127.0.0.1 ELASTICSEARCH_LOGS_PORT=$OS_PORT \
    MANIFEST_FALLBACK_BUCKET=demo-manifests \
    S3_BATCH_BUCKETS_FOLDER=$demo/batch S3_SYNC_BUCKETS_FOLDER=$demo/sync

echo "== files dropped into the bucket folders (batch/ for s3-batch, sync/ for s3-sync)"
mkdir -p "$demo/batch/demo-bucket/logs/2026/11" "$demo/sync/demo-bucket/reports"
for i in 1 2 3 4 5; do echo "log line $i" > "$demo/batch/demo-bucket/logs/2026/11/app-$i.log"; done
echo "still being uploaded" > "$demo/batch/demo-bucket/logs/2026/11/app-6.log.filepart"
echo "quarterly numbers" > "$demo/sync/demo-bucket/reports/q4 summary.txt"
head -c $((40 * 1024 * 1024)) /dev/urandom > "$demo/sync/demo-bucket/reports/big.bin"
(cd "$demo" && find batch sync -type f | sort)

echo "== s3-batch -vv: the five logs into one tar archive"
"$top/build/s3-batch" -vv
echo "== s3-sync -vv: each file as it is (the 40 MiB one in parts)"
S3BATCH_MULTIPART_THRESHOLD_MB=16 "$top/build/s3-sync" -vv

echo "== left in the bucket folders (an ignored temporary name):"
(cd "$demo" && find batch sync -type f | sort)
echo "== objects in s3://demo-bucket (listed by awscli, a second client):"
aws s3 ls --recursive s3://demo-bucket/
echo "== the manifest in OpenSearch: which file is where"
curl -s -XPOST "127.0.0.1:$OS_PORT/s3-batch-manifest/_refresh" >/dev/null
curl -s "127.0.0.1:$OS_PORT/s3-batch-manifest/_search?size=20&sort=file.path" |
    python3 -c 'import json,sys
for h in json.load(sys.stdin)["hits"]["hits"]:
    s=h["_source"]
    print("%-26s -> %-48s offset %7d, %8d bytes (%s)" % (s["file"]["path"],
        s["aws"]["s3"]["object"]["key"], s["s3batch"]["tar"]["data_offset"],
        s["file"]["size"], s["s3batch"]["tool"]))'
echo "== one file back alone from its archive, with a Range GET at its offset:"
read -r key off size < <(curl -s "127.0.0.1:$OS_PORT/s3-batch-manifest/_search?q=file.path:%22logs/2026/11/app-3.log%22" |
    python3 -c 'import json,sys
s=json.load(sys.stdin)["hits"]["hits"][0]["_source"]
print(s["aws"]["s3"]["object"]["key"], s["s3batch"]["tar"]["data_offset"], s["file"]["size"])')
aws s3api get-object --bucket demo-bucket --key "$key" \
    --range "bytes=$off-$((off + size - 1))" "$demo/app-3.log" >/dev/null
echo "logs/2026/11/app-3.log: $(cat "$demo/app-3.log")"
