#!/usr/bin/env bash
# Smoke check of the test node (tests/lib/opensearch.sh start first):
# template, _bulk, _search, mapping, write block and mapping conflict errors.
# Prints each response; exits non-zero on the first unexpected one.
set -euo pipefail
U=${OS_URL:-http://127.0.0.1:${OS_PORT:-9200}}
IDX=s3b-smoke
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }
req() { curl -s -m 30 "$@"; }
expect() { # expect NAME PATTERN BODY
    echo "$1: $3"
    printf '%s' "$3" | grep -q -- "$2" || fail "$1: no '$2'"
}

req -XDELETE "$U/$IDX" >/dev/null || true
r=$(req -XPUT "$U/_index_template/s3b-smoke" -H 'Content-Type: application/json' -d '{
  "index_patterns": ["s3b-smoke*"],
  "template": {"mappings": {"properties": {
    "@timestamp": {"type": "date"}, "key": {"type": "keyword"}, "size": {"type": "long"}}}}}')
expect template '"acknowledged":true' "$r"

bulk() { req -XPOST "$U/_bulk$1" -H 'Content-Type: application/x-ndjson' --data-binary @-; }
r=$(printf '%s\n' \
  '{"index":{"_index":"s3b-smoke","_id":"a"}}' '{"@timestamp":"2024-01-01T00:00:00Z","key":"x/a","size":1}' \
  '{"index":{"_index":"s3b-smoke","_id":"b"}}' '{"@timestamp":"2024-01-02T00:00:00Z","key":"x/b","size":2}' \
  '{"index":{"_index":"s3b-smoke","_id":"c"}}' '{"@timestamp":"2024-01-03T00:00:00Z","key":"x/c","size":3}' | bulk '?refresh=true')
expect bulk '"errors":false' "$r"

r=$(req "$U/$IDX/_search?filter_path=hits.total,hits.hits._id")
expect search '"total":{"value":3,' "$r"

r=$(req "$U/$IDX/_mapping")
expect mapping '"@timestamp":{"type":"date"}' "$r"

r=$(req -XPUT "$U/$IDX/_settings" -H 'Content-Type: application/json' -d '{"index.blocks.write":true}')
expect block-on '"acknowledged":true' "$r"
r=$(printf '%s\n' '{"index":{"_index":"s3b-smoke","_id":"d"}}' '{"@timestamp":"2024-01-04T00:00:00Z","key":"x/d","size":4}' | bulk '')
expect write-block '"status":403,"error":{"type":"cluster_block_exception"' "$r"
r=$(req -XPUT "$U/$IDX/_settings" -H 'Content-Type: application/json' -d '{"index.blocks.write":false}')
expect block-off '"acknowledged":true' "$r"

r=$(printf '%s\n' \
  '{"index":{"_index":"s3b-smoke","_id":"e"}}' '{"@timestamp":"2024-01-05T00:00:00Z","key":"x/e","size":"not-a-number"}' \
  '{"index":{"_index":"s3b-smoke","_id":"f"}}' '{"@timestamp":"2024-01-06T00:00:00Z","key":"x/f","size":6}' | bulk '')
expect mapping-conflict '"status":400,"error":{"type":"mapper_parsing_exception"' "$r"
expect mapping-conflict-other-item '"_id":"f","_version":1,"result":"created"' "$r"

req -XDELETE "$U/$IDX" >/dev/null
req -XDELETE "$U/_index_template/s3b-smoke" >/dev/null
echo "smoke: OK"
