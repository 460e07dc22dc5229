#!/usr/bin/env bash
# s3-batch (and s3-sync's manifests) against the real radosgw and a real
# OpenSearch: archive contents, one document per original, Range GET at the
# data offset, the fallback bucket when OpenSearch is down or rejects items,
# manifests waiting in the spool when both fail, a file changed mid-read.
. "$S3B_TOP/tests/lib/common.sh"
BATCH=$S3B_BUILD/s3-batch SYNC=$S3B_BUILD/s3-sync
export OS_PORT=${OS_PORT:-19400} OS_ROOT=$S3B_TMP/os
ES=http://127.0.0.1:$OS_PORT
FALLBACK_BUCKET=s3b-fallback
IDX=s3-batch-manifest
os_start() { "$S3B_TOP/tests/lib/opensearch.sh" start >/dev/null; }
os_stop() { "$S3B_TOP/tests/lib/opensearch.sh" stop >/dev/null 2>&1; }
trap os_stop EXIT
os_start || { echo "OpenSearch did not start"; echo "0 passed, 1 failed"; exit 1; }
export S3BATCH_SETTLE_SECONDS=0

es() { curl -s -H 'Content-Type: application/json' "$@"; }
es_refresh() { es -XPOST "$ES/$IDX/_refresh" >/dev/null; }
# Documents of a bucket as "path<TAB>archive key<TAB>offset<TAB>size", sorted.
es_docs() {
	es_refresh
	es "$ES/$IDX/_search?size=10000" -d "{\"query\":{\"match_phrase\":{\"aws.s3.bucket.name\":\"$1\"}}}" |
	python3 -c 'import json,sys
for h in json.load(sys.stdin)["hits"]["hits"]:
    s=h["_source"]; f=s["file"]
    print("%s\t%s\t%d\t%d" % (f["path"], s["aws"]["s3"]["object"]["key"], s["s3batch"]["tar"]["data_offset"], f["size"]))' |
	LC_ALL=C sort
}
# Entries of every fallback object for a bucket: "path<TAB>archive key", sorted.
fallback_entries() {
	local k
	for k in $(s3_keys $FALLBACK_BUCKET); do
		s3_get $FALLBACK_BUCKET "$k" "$W/fb.json"
		python3 -c 'import json,sys
for d in json.load(open(sys.argv[1]))["entries"]:
    if d["aws"]["s3"]["bucket"]["name"]==sys.argv[2]:
        print("%s\t%s" % (d["file"]["path"], d["aws"]["s3"]["object"]["key"]))' "$W/fb.json" "$1"
	done | LC_ALL=C sort
}
spool_empty() { test -z "$(ls -A "$W/spool/$1/batches" 2>/dev/null)$(ls -d "$W/spool/$1"/work.* 2>/dev/null)"; }

fill() {	# bucket: nested folders, odd names, a file bigger than the limit
	local r=$W/root/$1
	mkdir -p "$r/logs/2026/11" "$r/odd names/ü" "$W/mirror"
	for i in $(seq 1 30); do head -c $((RANDOM % 5000)) /dev/urandom > "$r/logs/2026/11/app-$i.log"; done
	: > "$r/logs/2026/11/empty.log"
	echo "top" > "$r/top.txt"
	echo "space" > "$r/odd names/ü/a b+c=d&e?f#g%h~i.txt"
	head -c $((3 * 1024 * 1024)) /dev/urandom > "$r/logs/big.bin"
	cp -a "$r" "$W/mirror/"
}

# Every archive of the bucket, untarred by GNU tar, gives back the tree.
archives_hold_tree() {
	local b=$1 out=$W/untar k dir
	rm -rf "$out"; mkdir -p "$out"
	while IFS= read -r k; do
		case $k in *.tar) ;; *) continue;; esac
		dir=$(dirname "$k"); [ "$dir" = . ] && dir=
		mkdir -p "$out/$dir"
		s3_get "$b" "$k" "$W/a.tar" || return 1
		tar -xf "$W/a.tar" -C "$out/$dir" || return 1
	done < <(s3_keys "$b")
	diff -r "$out" "$W/mirror/$b" && test "$(local_files "$out" | wc -l)" = "$(local_files "$W/mirror/$b" | wc -l)"
}

# A Range GET at each document's data offset returns exactly the file.
range_gets_match() {
	local b=$1 path key off size bad=0
	while IFS=$'\t' read -r path key off size; do
		[ "$size" -eq 0 ] && continue
		aws s3api get-object --bucket "$b" --key "$key" \
		    --range "bytes=$off-$((off + size - 1))" "$W/range" >/dev/null || { bad=1; continue; }
		cmp -s "$W/range" "$W/mirror/$b/$path" || { echo "range differs: $path"; bad=1; }
	done < <(es_docs "$b")
	[ $bad -eq 0 ]
}

# --- OpenSearch up ---
new_work; tool_env; export ELASTICSEARCH_LOGS_PORT=$OS_PORT MAX_BATCH_SIZE_MB=1
s3_rb $FALLBACK_BUCKET; s3_mb $FALLBACK_BUCKET
b=s3b-batch-es; s3_rb $b; s3_mb $b; fill $b
"$BATCH" -v 2>"$W/err"; rc=$?; cat "$W/err"
check_eq "es up: exit 0" "$rc" 0
check_eq "es up: every original is gone" "$(local_files "$W/root")" ""
check "es up: the archives hold exactly the originals (GNU tar)" archives_hold_tree $b
docs=$(es_docs $b)
check_eq "es up: one document per original" "$(cut -f1 <<<"$docs")" "$(local_files "$W/mirror/$b")"
missing=$(comm -23 <(cut -f2 <<<"$docs" | LC_ALL=C sort -u) <(s3_keys $b | LC_ALL=C sort))
check_eq "es up: each document names an archive that exists" "$missing" ""
check "es up: Range GET at data_offset returns exactly each file" range_gets_match $b
check_eq "es up: @timestamp is a date in the index mapping" \
    "$(es "$ES/$IDX/_mapping" | python3 -c 'import json,sys; print(json.load(sys.stdin)["'$IDX'"]["mappings"]["properties"]["@timestamp"]["type"])')" date
check "es up: no fallback object" test -z "$(s3_keys $FALLBACK_BUCKET)"
check "es up: the spool is empty" spool_empty s3-batch
archives=$(s3_keys $b | wc -l)
check "es up: the 1 MiB limit made several archives ($archives)" test "$archives" -ge 3

# s3-sync's manifests land in the same index, one document per object.
bs=s3b-batch-syncdocs; s3_rb $bs; s3_mb $bs
mkdir -p "$W/root/$bs/d"; for i in 1 2 3; do echo $i > "$W/root/$bs/d/s$i"; done
"$SYNC" 2>"$W/err"; rc=$?
check_eq "s3-sync manifests: exit 0" "$rc" 0
check_eq "s3-sync manifests: one document per object, key = object key" \
    "$(es_docs $bs | cut -f1,2)" "$(printf 'd/s1\td/s1\nd/s2\td/s2\nd/s3\td/s3')"
check "s3-sync manifests: the spool is empty" spool_empty s3-sync

# --- OpenSearch stopped: exit 0, the manifest in the fallback bucket ---
os_stop
new_work; tool_env; export ELASTICSEARCH_LOGS_PORT=$OS_PORT MAX_BATCH_SIZE_MB=1
b=s3b-batch-down; s3_rb $b; s3_mb $b; fill $b
"$BATCH" 2>"$W/err"; rc=$?; cat "$W/err"
check_eq "es down: exit 0" "$rc" 0
check_eq "es down: every original is in one fallback entry" \
    "$(fallback_entries $b | cut -f1)" "$(local_files "$W/mirror/$b")"
check "es down: the archives hold exactly the originals" archives_hold_tree $b
check "es down: fallback keys are <prefix>/yyyy/mm/dd/<uuid>.json" \
    bash -c "s3_keys() { :; }; test -z \"\$(aws s3api list-objects-v2 --bucket $FALLBACK_BUCKET --query 'Contents[].Key' --output text | tr '\t' '\n' | grep -vE '^manifests/[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9a-f-]{36}\.json$')\""
check "es down: the spool is empty" spool_empty s3-batch

# --- OpenSearch and the fallback both unreachable: the manifest waits ---
new_work; tool_env; export ELASTICSEARCH_LOGS_PORT=$OS_PORT MAX_BATCH_SIZE_MB=1
b=s3b-batch-wait; s3_rb $b; s3_mb $b; fill $b
MANIFEST_FALLBACK_BUCKET=s3b-fallback-missing "$BATCH" 2>"$W/err"; rc=$?; cat "$W/err"
check_eq "both down: exit 1" "$rc" 1
check "both down: the originals are gone (archived in S3)" test -z "$(local_files "$W/root")"
check "both down: the manifests wait in the spool" \
    test "$(ls "$W/spool/s3-batch/batches" | wc -l)" -ge 1
check "both down: the error says the manifest stays" grep -q "stays in the spool" "$W/err"
os_start
"$BATCH" 2>"$W/err"; rc=$?; cat "$W/err"
check_eq "both back: exit 0" "$rc" 0
check_eq "both back: the waiting manifests are delivered, one document each" \
    "$(es_docs $b | cut -f1)" "$(local_files "$W/mirror/$b")"
check "both back: the spool is empty" spool_empty s3-batch
check "both back: each archive once" archives_hold_tree $b

# --- OpenSearch rejects some items: those to the fallback, the rest indexed ---
new_work; tool_env; export ELASTICSEARCH_LOGS_PORT=$OS_PORT MAX_BATCH_SIZE_MB=1
b=s3b-batch-reject; s3_rb $b; s3_mb $b
s3_rb $FALLBACK_BUCKET; s3_mb $FALLBACK_BUCKET
mkdir -p "$W/root/$b/r" "$W/mirror/$b/r"
for i in 1 2 3; do printf 'x%.0s' $(seq 1 50) > "$W/root/$b/r/small$i"; done
for i in 1 2; do head -c 500 /dev/urandom > "$W/root/$b/r/large$i"; done
cp -a "$W/root/$b/." "$W/mirror/$b/"
# an index whose file.size is a byte: sizes over 127 are refused per item
es -XPUT "$ES/s3b-reject" -d '{"mappings":{"properties":{"file":{"properties":{"size":{"type":"byte"}}}}}}' >/dev/null
ELASTICSEARCH_LOGS_INDEX=s3b-reject "$BATCH" 2>"$W/err"; rc=$?; cat "$W/err"
check_eq "rejects: exit 0" "$rc" 0
IDX=s3b-reject
check_eq "rejects: the accepted items are in OpenSearch" "$(es_docs $b | cut -f1)" "$(printf 'r/small1\nr/small2\nr/small3')"
check_eq "rejects: the rejected items are in the fallback, once" "$(fallback_entries $b | cut -f1)" "$(printf 'r/large1\nr/large2')"
check "rejects: the spool is empty" spool_empty s3-batch
IDX=s3-batch-manifest

# --- a file rewritten while it is read: left out, archived once, later ---
new_work; tool_env; export ELASTICSEARCH_LOGS_PORT=$OS_PORT MAX_BATCH_SIZE_MB=64
b=s3b-batch-change; s3_rb $b; s3_mb $b
mkdir -p "$W/root/$b/c"; echo steady > "$W/root/$b/c/steady.txt"
head -c $((8 * 1024 * 1024)) /dev/urandom > "$W/root/$b/c/moving.bin"
# reads of the moving file are slowed so the writer gets in between
strace -f -o /dev/null -e trace=pread64 -e inject=pread64:delay_enter=300000 \
    "$BATCH" 2>"$W/err" &
pid=$!
sleep 1; echo "appended" >> "$W/root/$b/c/moving.bin"
wait $pid; rc=$?; cat "$W/err"
check "changed: the run says the file changed while it was read" grep -q "changed while it was read" "$W/err"
check_eq "changed: the file stays local" "$(local_files "$W/root")" "$b/c/moving.bin"
check_eq "changed: the other file was archived" "$(es_docs $b | cut -f1)" "c/steady.txt"
cp "$W/root/$b/c/moving.bin" "$W/moving.final"
"$BATCH" 2>"$W/err"; rc=$?
check_eq "changed, next run: exit 0" "$rc" 0
check_eq "changed, next run: archived once, in its final form" \
    "$(es_docs $b | cut -f1)" "$(printf 'c/moving.bin\nc/steady.txt')"
key=$(es_docs $b | awk -F'\t' '$1=="c/moving.bin"{print $2}')
s3_get $b "$key" "$W/m.tar"; tar -xOf "$W/m.tar" moving.bin > "$W/m.out"
check "changed, next run: with its final bytes" cmp -s "$W/m.out" "$W/moving.final"

done_testing
