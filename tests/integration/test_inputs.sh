#!/usr/bin/env bash
# Bad input, for both tools, against the real radosgw (ElasticSearch down:
# manifests go to the fallback bucket, read back with boto3): odd names
# (newlines, control bytes, not UTF-8, 255 bytes), keys over 1024 bytes,
# 100 levels of folders, folders that are not bucket names, FIFOs, sockets,
# devices, symlinks out of the tree, hard links; unreadable files (as an
# unprivileged user); files that vanish, shrink or grow between the walk and
# the read (strace holds the run in a syscall); a folder swapped for a
# symlink, once at a chosen moment and raced in a loop; /proc with hidepid.
# Each case: a one-line warning naming the file (escaped), the rest of the
# run goes on, nothing lost, nothing outside the tree read, the documented
# exit status.
. "$S3B_TOP/tests/lib/common.sh"
. "$S3B_TOP/tests/lib/inputs_lib.sh"
export S3BATCH_SETTLE_SECONDS=0 MAX_BATCH_SIZE_MB=64
T0=$(date +%s)

# Runs as nobody need folders nobody can reach: $S3B_TMP is 0700.
U=$(mktemp -d /tmp/s3b-inputs.XXXXXX)
chmod 755 "$U"
BG=()
cleanup() {
	local p
	for p in "${BG[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	rm -rf "$U"
}
trap cleanup EXIT

# The tools' environment with ElasticSearch down.
env_down() { tool_env; export ELASTICSEARCH_LOGS_PORT=$ES_CLOSED_PORT; }

s3_rb "$FALLBACK_BUCKET"; s3_mb "$FALLBACK_BUCKET"

# --- /proc with hidepid needs files older than its 60 s settle time: they
# are made now, the case runs last.
hp_prepare() {	# tool tag
	local d=$U/hidepid-$2 b=s3b-in-hidepid-$2
	mkdir -p "$d/root/$b/d" "$d/spool"
	echo "old $2" > "$d/root/$b/d/old.txt"
	chown -R nobody:nogroup "$d"
	s3_rb "$b"; s3_mb "$b"
}
hp_prepare "$SYNC" s
hp_prepare "$BATCH" b
HP_T0=$(date +%s)

# ===== 1. One tree of every odd name and kind of file, both tools =====
tree_case() {	# tool tag
	local tool=$1 t=$2 name b=s3b-in-tree-$2 out
	name=$(basename "$tool")
	new_work; env_down
	out=$S3B_TMP/outside-$t
	rm -rf "$out"; mkdir -p "$out"
	s3_rb "$b"; s3_mb "$b"
	python3 "$S3B_TOP/tests/lib/inputs_tree.py" "$name" "$W/root" "$b" \
	    "$W/mirror" "$out" "$W/expect" || { not_ok "$name: tree built"; return; }
	# bait outside the tree: old atimes, so that any read would show
	# (stat only from here on: a listing would set the folders' atimes)
	local bait=("$out" "$out/dir" "$out/secret.txt" "$out/dir/inside.txt")
	touch -a -d '2001-01-01 00:00:00' "${bait[@]}"
	local atimes; atimes=$(stat -c '%X %n' "${bait[@]}")
	run_tool "$tool" "$W/err"
	cat "$W/err"
	check_eq "$name tree: exit 0 (skips are warnings)" "$RC" 0
	check_eq "$name tree: what stays is exactly the skipped names" \
	    "$(left_hex "$W/root")" "$(cat "$W/expect.stay")"
	local shown reason n
	while IFS=$'\t' read -r shown reason; do
		n=$(warn_count "$W/err" "$shown" "$reason")
		check_eq "$name tree: one warning: '$shown': $reason" "$n" 1
	done < "$W/expect.warn"
	check_eq "$name tree: no other line on stderr" \
	    "$(unexpected_lines "$W/err" "$W/expect.warn")" ""
	check_eq "$name tree: nothing outside the tree was read (atimes)" \
	    "$(stat -c '%X %n' "${bait[@]}")" "$atimes"
	check_eq "$name tree: the bait outside is intact" \
	    "$(cat "$out/secret.txt" "$out/dir/inside.txt")" \
	    "$(printf 'BAIT secret.txt\nBAIT dir/inside.txt')"
	if [ "$name" = s3-sync ]; then
		check "s3-sync tree: S3 holds exactly the files taken, with their bytes, one manifest entry each" \
		    $IV --unescape sync "$b" "$W/mirror/$b" "$FALLBACK_BUCKET"
		check "s3-sync tree: manifest file.path is the object key (control bytes, backslash)" \
		    $IV sync "$b" "$W/mirror/$b" "$FALLBACK_BUCKET"
	else
		check "s3-batch tree: the archives hold exactly the files taken, once, with their bytes; one manifest entry each" \
		    $IV --unescape batch "$b" "$W/mirror/$b" "$FALLBACK_BUCKET"
		check "s3-batch tree: manifest file.path is the original key for UTF-8 names (control bytes, backslash)" \
		    $IV batch "$b" "$W/mirror/$b" "$FALLBACK_BUCKET"
		# a name that is not UTF-8: raw bytes in path_b64, escaped path
		check_eq "s3-batch tree: file.path and file.path_b64 of 'badname/ff\\xff'" \
		    "$($IV entries "$b" "$FALLBACK_BUCKET" | python3 -c 'import json,sys
for l in sys.stdin:
    f=json.loads(l)["file"]
    if f["path"].startswith("badname/ff"): print(f["path"], f.get("path_b64"))')" \
		    "badname/ff\\xff YmFkbmFtZS9mZv8="
		check_eq "s3-batch tree: the 100-level folder's archive key" \
		    "$(s3_keys "$b" | grep -c "^deep/$(printf 'd/%.0s' $(seq 1 100))[0-9a-f-]\{36\}\.tar\$")" 1
	fi
	check "$name tree: the spool is clean" spool_clean "$W/spool" "$name"
	s3_rb "$b"
}
tree_case "$SYNC" s
tree_case "$BATCH" b

echo "elapsed $(( $(date +%s) - T0 )) s"
done_testing
