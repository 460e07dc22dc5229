#!/usr/bin/env bash
# Bad input, for both tools, against the real radosgw (ElasticSearch down:
# manifests go to the fallback bucket, read back with boto3): odd names
# (newlines, control bytes, not UTF-8, 255 bytes), keys over 1024 bytes,
# 100 levels of folders, folders that are not bucket names, FIFOs, sockets,
# devices, symlinks out of the tree, hard links; unreadable files (as an
# unprivileged user); files that vanish, shrink or grow between the walk and
# the read (strace holds the run in a syscall); a folder swapped for a
# symlink, once at a chosen moment and raced in a loop; /proc with hidepid;
# files the run can read but not remove.
# Each case: a one-line warning naming the file (escaped), the rest of the
# run goes on, nothing lost, nothing outside the tree read, the documented
# exit status. Needs root (setpriv, unshare, mknod, chattr), strace.
# Checks that fail on purpose until the bugs they found are fixed:
#   file.path escapes control bytes and backslash in UTF-8 keys (tree);
#   s3-batch: a hard link in a second folder is "changed while read";
#   s3-batch: an unreadable file is said to be "replaced since the walk";
#   both: a file that cannot be removed is taken again by every run;
#   both: a FIFO swapped in for a file after the walk is opened;
#   s3-sync: an object uploaded from a file that then changed stays in S3
#     and doubles the file when its folder is renamed before the next run;
#   s3-sync: a file that shrinks while read ends the run with 74.
. "$S3B_TOP/tests/lib/common.sh"
. "$S3B_TOP/tests/lib/inputs_lib.sh"
export S3BATCH_SETTLE_SECONDS=0 MAX_BATCH_SIZE_MB=64
T0=$(date +%s)
if [ "$(id -u)" != 0 ] || ! command -v strace >/dev/null; then
	echo "test_inputs needs root and strace"; echo "0 passed, 1 failed"; exit 1
fi

# Runs as nobody need folders nobody can reach: $S3B_TMP is 0700.
U=$(mktemp -d /tmp/s3b-inputs.XXXXXX)
chmod 755 "$U"
BG=()
cleanup() {
	local p
	for p in "${BG[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	es_refusing_stop
	chattr -R -i "$U" 2>/dev/null
	rm -rf "$U"
}
trap cleanup EXIT
es_refusing_start || { echo "0 passed, 1 failed"; exit 1; }

# INPUTS_ONLY="tree race_open ...": run only those cases (development).
case_on() {
	[ -z "${INPUTS_ONLY:-}" ] || [[ " $INPUTS_ONLY " == *" $1 "* ]] || return 1
	echo "--- $1 ($(( $(date +%s) - T0 )) s)"
}

# The tools' environment with ElasticSearch down.
env_down() { tool_env; export ELASTICSEARCH_LOGS_PORT=$ES_CLOSED_PORT; }

s3_reset "$FALLBACK_BUCKET"

# --- /proc with hidepid needs files older than its 60 s settle time: they
# are made now, the case runs last.
hp_prepare() {	# tool tag
	local d=$U/hidepid-$2 b=s3b-in-hidepid-$2
	mkdir -p "$d/root/$b/d" "$d/spool"
	echo "old $2" > "$d/root/$b/d/old.txt"
	chown -R nobody:nogroup "$d"
	s3_reset "$b"
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
	s3_reset "$b"
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
case_on tree && tree_case "$SYNC" s
case_on tree && tree_case "$BATCH" b

# ===== 2. Hard links: three names of one inode, in two folders, and one
# name outside the tree: every name in the tree delivered once, the outside
# name untouched.
hard_case() {	# tool tag
	local tool=$1 t=$2 name b=s3b-in-hard-$2 out
	name=$(basename "$tool")
	new_work; env_down
	out=$S3B_TMP/outside-hard-$t; rm -f "$out"
	s3_reset "$b"
	mkdir -p "$W/root/$b/hard" "$W/root/$b/hard2" "$W/mirror/$b/hard" "$W/mirror/$b/hard2"
	echo "one inode, three names" > "$W/root/$b/hard/one"
	ln "$W/root/$b/hard/one" "$W/root/$b/hard/two"
	ln "$W/root/$b/hard/one" "$W/root/$b/hard2/three"
	echo "also named outside" > "$W/root/$b/hard/four"
	ln "$W/root/$b/hard/four" "$out"
	cp "$W/root/$b/hard/one" "$W/mirror/$b/hard/one"
	cp "$W/root/$b/hard/one" "$W/mirror/$b/hard/two"
	cp "$W/root/$b/hard/one" "$W/mirror/$b/hard2/three"
	cp "$W/root/$b/hard/four" "$W/mirror/$b/hard/four"
	: > "$W/none"
	run_tool "$tool" "$W/err"; cat "$W/err"
	check_eq "$name hard links: exit 0" "$RC" 0
	check_eq "$name hard links: no warning" "$(unexpected_lines "$W/err" "$W/none")" ""
	check_eq "$name hard links: every name taken in one run" "$(local_files "$W/root")" ""
	# whatever the first run left, a second run must deliver
	run_tool "$tool" "$W/err2"
	check_eq "$name hard links: a second run exits 0" "$RC" 0
	if [ "$name" = s3-sync ]; then
		check "$name hard links: each name is an object with the bytes, one manifest entry each" \
		    $IV sync "$b" "$W/mirror/$b" "$FALLBACK_BUCKET"
	else
		check "$name hard links: each name is a regular entry with the bytes, once, one manifest entry each" \
		    $IV batch "$b" "$W/mirror/$b" "$FALLBACK_BUCKET"
	fi
	check_eq "$name hard links: the name outside the tree is untouched" \
	    "$(cat "$out") $(stat -c %h "$out")" "also named outside 1"
	s3_rb "$b"
}
case_on hard && hard_case "$SYNC" s
case_on hard && hard_case "$BATCH" b

# ===== 3. Unreadable files, as nobody (in its own pid namespace, so its
# /proc scan is complete and no settle time applies): a root-owned file
# mode 000 and a root-owned folder mode 000 among readable files.
unr_case() {	# tool tag
	local tool=$1 t=$2 name b=s3b-in-unr-$2 d=$U/unr-$2
	name=$(basename "$tool")
	s3_reset "$b"
	mkdir -p "$d/root/$b/d" "$d/root/$b/locked" "$d/spool" "$d/mirror/$b/d"
	echo "readable a" > "$d/root/$b/d/a.txt"
	echo "readable z" > "$d/root/$b/d/z.txt"
	cp "$d/root/$b/d/"*.txt "$d/mirror/$b/d/"
	echo "root only" > "$d/root/$b/d/m-secret.txt"
	echo "root only" > "$d/root/$b/locked/x.txt"
	chown -R nobody:nogroup "$d/root" "$d/spool"
	chown root:root "$d/root/$b/d/m-secret.txt" "$d/root/$b/locked" "$d/root/$b/locked/x.txt"
	chmod 000 "$d/root/$b/d/m-secret.txt" "$d/root/$b/locked"
	S3_SYNC_BUCKETS_FOLDER=$d/root S3_BATCH_BUCKETS_FOLDER=$d/root \
	S3BATCH_SPOOL_DIR=$d/spool ELASTICSEARCH_LOGS_HOST=127.0.0.1 \
	ELASTICSEARCH_LOGS_PORT=$ES_CLOSED_PORT MANIFEST_FALLBACK_BUCKET=$FALLBACK_BUCKET \
	    timeout -k 5 120 unshare -pf --mount-proc \
	    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$tool" 2>"$d/err"
	RC=$?; cat "$d/err"
	check_eq "$name unreadable: exit 0 (a warning)" "$RC" 0
	check_eq "$name unreadable: one warning names the file and says why" \
	    "$(grep -F "'$b/d/m-secret.txt'" "$d/err" | grep -c 'Permission denied')" 1
	check_eq "$name unreadable: one warning names the folder and says why" \
	    "$(grep -F "'$b/locked'" "$d/err" | grep -c 'Permission denied')" 1
	check_eq "$name unreadable: the unreadable file and folder stay" \
	    "$(chmod 755 "$d/root/$b/locked"; local_files "$d/root")" \
	    "$(printf '%s\n' "$b/d/m-secret.txt" "$b/locked/x.txt")"
	check "$name unreadable: no settle warning in its own pid namespace" \
	    bash -c "! grep -q 'cannot read every process' '$d/err'"
	if [ "$name" = s3-sync ]; then
		check "$name unreadable: the readable files (before and after it) went up" \
		    $IV sync "$b" "$d/mirror/$b" "$FALLBACK_BUCKET"
	else
		check "$name unreadable: the readable files (before and after it) were archived" \
		    $IV batch "$b" "$d/mirror/$b" "$FALLBACK_BUCKET"
	fi
	s3_rb "$b"
}
case_on unr && unr_case "$SYNC" s
case_on unr && unr_case "$BATCH" b

# ===== 3b. Files the run can read but cannot remove: in a folder it cannot
# write (nobody, root's folder), or immutable (chattr +i). Each run takes
# them again if nothing stops it: two runs must still leave each in S3 once
# (one archive; one manifest entry), with an error naming it.
undel_case() {	# tool tag
	local tool=$1 t=$2 name b=s3b-in-undel-$2 d=$U/undel-$2 i
	name=$(basename "$tool")
	s3_reset "$b"
	mkdir -p "$d/root/$b/ro" "$d/root/$b/ok" "$d/spool" "$d/mirror/$b/ro" "$d/mirror/$b/ok"
	echo "cannot be removed" > "$d/root/$b/ro/keep.txt"
	echo "fine" > "$d/root/$b/ok/fine.txt"
	echo "immutable" > "$d/root/$b/ok/immutable.txt"
	cp -a "$d/root/$b/." "$d/mirror/$b/"
	chown -R nobody:nogroup "$d/spool" "$d/root/$b/ok"
	chattr +i "$d/root/$b/ok/immutable.txt"
	for i in 1 2; do
		S3_SYNC_BUCKETS_FOLDER=$d/root S3_BATCH_BUCKETS_FOLDER=$d/root \
		S3BATCH_SPOOL_DIR=$d/spool ELASTICSEARCH_LOGS_HOST=127.0.0.1 \
		ELASTICSEARCH_LOGS_PORT=$ES_CLOSED_PORT MANIFEST_FALLBACK_BUCKET=$FALLBACK_BUCKET \
		    timeout -k 5 120 unshare -pf --mount-proc \
		    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$tool" 2>"$d/err.$i"
		echo "run $i: exit $?" >> "$d/rcs"; cat "$d/err.$i"
	done
	chattr -i "$d/root/$b/ok/immutable.txt"
	check_eq "$name undeletable: exit 74 both runs (local I/O failure)" \
	    "$(cat "$d/rcs" | tr '\n' ' ')" "run 1: exit 74 run 2: exit 74 "
	check_eq "$name undeletable: one error names the file in the folder it cannot write" \
	    "$(grep -F "'$b/ro/keep.txt'" "$d/err.1" | grep -c 'error: .*Permission denied')" 1
	check_eq "$name undeletable: one error names the immutable file" \
	    "$(grep -F "'$b/ok/immutable.txt'" "$d/err.1" | grep -c 'error: .*Operation not permitted')" 1
	check_eq "$name undeletable: both stay, the other file went" "$(local_files "$d/root")" \
	    "$(printf '%s\n' "$b/ok/immutable.txt" "$b/ro/keep.txt")"
	if [ "$name" = s3-sync ]; then
		check "$name undeletable: after two runs each file is in S3 once, with one manifest entry" \
		    $IV sync "$b" "$d/mirror/$b" "$FALLBACK_BUCKET"
	else
		check "$name undeletable: after two runs each file is in one archive, with one manifest entry" \
		    $IV batch "$b" "$d/mirror/$b" "$FALLBACK_BUCKET"
	fi
	s3_rb "$b"
}
case_on undel && undel_case "$SYNC" s
case_on undel && undel_case "$BATCH" b

# ===== 4. Files that change between the walk and the open: strace holds
# the run in the first open of the folder (delay_enter on openat through
# that folder's descriptor) while they grow, shrink, vanish, are replaced
# by another file or by a FIFO (with a writer waiting on it, which would be
# let through if the run opened the FIFO).
race_open_case() {	# tool tag
	local tool=$1 t=$2 name b=s3b-in-raceo-$2 r sp tp wpid
	name=$(basename "$tool")
	new_work; env_down
	s3_reset "$b"
	r=$W/root/$b/r
	mkdir -p "$r" "$W/mirror/$b/r"
	head -c 65536 /dev/urandom > "$r/a-grow"
	head -c 65536 /dev/urandom > "$r/b-shrink"
	echo vanish > "$r/c-vanish"
	echo "will be a fifo" > "$r/d-fifo"
	echo "first inode" > "$r/e-replaced"
	echo steady > "$r/f-steady"
	strace -f -qq -o /dev/null -P "$r" -e trace=openat \
	    -e inject=openat:delay_enter=1000000 "$tool" 2>"$W/err" &
	sp=$!
	if tp=$(traced_pid $sp) && wait_in_syscall "$tp" 257 "$r"; then
		head -c 1000 /dev/urandom >> "$r/a-grow"
		truncate -s 1000 "$r/b-shrink"
		rm "$r/c-vanish"
		rm "$r/d-fifo"; mkfifo "$r/d-fifo"
		( exec 3>"$r/d-fifo"; echo opened > "$W/fifo-opened" ) & wpid=$!
		BG+=("$wpid")
		# made before the old one goes, so that its inode is another
		echo "second inode" > "$W/e-new"; mv "$W/e-new" "$r/e-replaced"
		ok "$name race open: the run was held in its first open"
	else
		not_ok "$name race open: the run was held in its first open"
	fi
	wait $sp; RC=$?; cat "$W/err"
	sleep 0.2
	check "$name race open: the FIFO that replaced a file was not opened" test ! -e "$W/fifo-opened"
	kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null
	check_eq "$name race open: exit 1 (changed files left for the next run)" "$RC" 1
	local f
	for f in a-grow b-shrink c-vanish d-fifo e-replaced; do
		check_eq "$name race open: one warning names r/$f" \
		    "$(grep -cF "'$b/r/$f'" "$W/err")" 1
	done
	check "$name race open: it says a-grow changed" grep -qF "'$b/r/a-grow': changed while it was" "$W/err"
	check "$name race open: it says c-vanish vanished" grep -qF "'$b/r/c-vanish': vanished" "$W/err"
	check "$name race open: it says e-replaced was replaced" \
	    grep -qE "'$b/r/e-replaced': .*(replaced|not the file the walk saw)" "$W/err"
	check_eq "$name race open: what changed stays" "$(local_files "$W/root")" \
	    "$(printf '%s\n' "$b/r/a-grow" "$b/r/b-shrink" "$b/r/e-replaced")"
	check "$name race open: the FIFO stays" test -p "$r/d-fifo"
	cp "$r/a-grow" "$r/b-shrink" "$r/e-replaced" "$W/mirror/$b/r/"
	echo steady > "$W/mirror/$b/r/f-steady"
	rm "$r/d-fifo"
	run_tool "$tool" "$W/err"; cat "$W/err"
	check_eq "$name race open, next run: exit 0" "$RC" 0
	check_eq "$name race open, next run: nothing left" "$(local_files "$W/root")" ""
	if [ "$name" = s3-sync ]; then
		check "$name race open, next run: every file in S3 with its final bytes" \
		    $IV sync "$b" "$W/mirror/$b"
	else
		check "$name race open, next run: every file archived once with its final bytes" \
		    $IV batch "$b" "$W/mirror/$b" "$FALLBACK_BUCKET"
	fi
	s3_rb "$b"
}
case_on race_open && race_open_case "$SYNC" s
case_on race_open && race_open_case "$BATCH" b

# ===== 5. A file that grows or shrinks while it is read: strace holds the
# run in its first read (pread64) of it while it changes.
race_read_case() {	# tool tag grow|shrink
	local tool=$1 t=$2 how=$3 name b=s3b-in-racer-$2-$3 r sp tp
	name=$(basename "$tool")
	new_work; env_down
	s3_reset "$b"
	r=$W/root/$b/r
	mkdir -p "$r" "$W/mirror/$b/r"
	head -c 600000 /dev/urandom > "$r/a-target"
	echo steady > "$r/z-steady"
	cp "$r/z-steady" "$W/mirror/$b/r/"
	strace -f -qq -o /dev/null -P "$r/a-target" -e trace=pread64 \
	    -e inject=pread64:delay_enter=700000 "$tool" 2>"$W/err" &
	sp=$!
	if tp=$(traced_pid $sp) && wait_in_syscall "$tp" 17 "$r/a-target"; then
		if [ "$how" = grow ]; then
			head -c 5000 /dev/urandom >> "$r/a-target"
		else
			truncate -s 100000 "$r/a-target"
		fi
		ok "$name $how while read: the run was held in its first read"
	else
		not_ok "$name $how while read: the run was held in its first read"
	fi
	wait $sp; RC=$?; cat "$W/err"
	check_eq "$name $how while read: exit 1 (left for the next run)" "$RC" 1
	check_eq "$name $how while read: one line names the file" \
	    "$(grep -cF "'$b/r/a-target'" "$W/err")" 1
	check "$name $how while read: it says the file changed" \
	    grep -qF "'$b/r/a-target': changed while it was" "$W/err"
	check_eq "$name $how while read: the file stays" "$(local_files "$W/root")" "$b/r/a-target"
	if [ "$name" = s3-batch ]; then
		check "$name $how while read: the other file archived, not this one" \
		    $IV batch "$b" "$W/mirror/$b" "$FALLBACK_BUCKET"
	fi
	if [ "$how" = grow ]; then
		# the folder is renamed before the next run (as a client that
		# uploads into a folder and renames it when done): the file must
		# still end up in S3 once, under its new key only
		mv "$r" "$W/root/$b/r2"
		mkdir -p "$W/mirror/$b/r2"
		cp "$W/root/$b/r2/a-target" "$W/mirror/$b/r2/"
	else
		cp "$r/a-target" "$W/mirror/$b/r/"
	fi
	run_tool "$tool" "$W/err"; cat "$W/err"
	check_eq "$name $how while read, next run: exit 0" "$RC" 0
	check_eq "$name $how while read, next run: nothing left" "$(local_files "$W/root")" ""
	if [ "$name" = s3-sync ]; then
		check "$name $how while read, next run: both files in S3 with their final bytes, once (no object left from the changed upload)" \
		    $IV sync "$b" "$W/mirror/$b"
	else
		check "$name $how while read, next run: each file archived once with its final bytes" \
		    $IV batch "$b" "$W/mirror/$b" "$FALLBACK_BUCKET"
	fi
	s3_rb "$b"
}
case_on race_read && race_read_case "$SYNC" s grow
case_on race_read && race_read_case "$SYNC" s shrink
case_on race_read && race_read_case "$BATCH" b grow
case_on race_read && race_read_case "$BATCH" b shrink

# ===== 6. A folder swapped for a symlink to a folder of bait (same names)
# while the run is in it. Once at a chosen moment (strace holds the run in
# its first open there), then raced in a loop over many runs. The run reads
# and unlinks only through the descriptors it holds: what it takes comes
# from the real folder (under the key it had at the walk, or under the name
# it was moved to), the bait is neither read (atime) nor deleted nor sent.
make_bait() {	# dir count: f1..fN "BAIT fN", every atime in 2001
	python3 -c 'import os,sys
d=sys.argv[1]; os.makedirs(d, exist_ok=True)
for i in range(1, int(sys.argv[2])+1):
    with open(os.path.join(d, "f%d" % i), "w") as f: f.write("BAIT f%d\n" % i)
t=978307200*10**9
for i in range(1, int(sys.argv[2])+1): os.utime(os.path.join(d, "f%d" % i), ns=(t, t))
os.utime(d, ns=(t, os.stat(d).st_mtime_ns))' "$1" "$2"
}
# The bait is whole and unread: each file there with its bytes, no atime
# newer than 2001 (stat only: listing the folder would set its atime).
bait_untouched() {	# dir count
	python3 -c 'import os,sys
d=sys.argv[1]; n=int(sys.argv[2]); bad=0
for p in [d]+[os.path.join(d, "f%d" % i) for i in range(1, n+1)]:
    try: st=os.stat(p)
    except FileNotFoundError: print("bait gone:", p); bad+=1; continue
    if st.st_atime_ns != 978307200*10**9: print("bait read:", p); bad+=1
for i in range(1, n+1):
    with open(os.path.join(d, "f%d" % i)) as f:
        if f.read() != "BAIT f%d\n" % i: print("bait changed: f%d" % i); bad+=1
sys.exit(1 if bad else 0)' "$1" "$2"
}

swap_once_case() {	# tool tag
	local tool=$1 t=$2 name b=s3b-in-swap1-$2 base bait sp tp i
	name=$(basename "$tool")
	new_work; env_down
	s3_reset "$b"
	base=$W/root/$b/s; bait=$S3B_TMP/bait-once-$t
	mkdir -p "$base/d"
	for i in 1 2 3; do echo "real $i" > "$base/d/f$i"; done
	rm -rf "$bait"; make_bait "$bait" 3
	strace -f -qq -o /dev/null -P "$base/d" -e trace=openat \
	    -e inject=openat:delay_enter=1000000 "$tool" 2>"$W/err" &
	sp=$!
	if tp=$(traced_pid $sp) && wait_in_syscall "$tp" 257 "$base/d"; then
		mv "$base/d" "$base/d.away"; ln -s "$bait" "$base/d"
		ok "$name swap once: the folder was swapped while the run was in it"
	else
		not_ok "$name swap once: the folder was swapped while the run was in it"
	fi
	wait $sp; RC=$?; cat "$W/err"
	check_eq "$name swap once: exit 0" "$RC" 0
	check "$name swap once: the bait is whole and was not read" bait_untouched "$bait" 3
	check_eq "$name swap once: the real files were taken from where they went" \
	    "$(local_files "$W/root")" ""
	check "$name swap once: the symlink is left alone" test -L "$base/d"
	check "$name swap once: S3 has the real files under their keys, no bait" \
	    $IV race "${name#s3-}" "$b" 3 "$FALLBACK_BUCKET"
	s3_rb "$b"
}
case_on swap_once && swap_once_case "$SYNC" s
case_on swap_once && swap_once_case "$BATCH" b

SWAP_SECONDS=${SWAP_SECONDS:-6} SWAP_MAX=4000
swap_loop_case() {	# tool tag
	local tool=$1 t=$2 name b=s3b-in-swapn-$2 base bait loop end runs=0 rcs made
	name=$(basename "$tool")
	new_work; env_down
	s3_reset "$b"
	base=$W/root/$b/s; bait=$S3B_TMP/bait-loop-$t
	mkdir -p "$base/d" "$W/stage"
	rm -rf "$bait"; make_bait "$bait" $SWAP_MAX
	# the swapper: a new file in the real folder, then the folder moved
	# away and a symlink to the bait in its place for a moment, and back
	python3 -c 'import os,random,sys,time
base,bait,stop,made,mx,stage=sys.argv[1:7]
d=os.path.join(base,"d"); away=os.path.join(base,"d.away"); i=0; k=0
while not os.path.exists(stop) and i<int(mx):
    # a new file every third swap, made whole elsewhere and renamed in:
    # it never changes in the tree
    k+=1
    if k % 3 == 1:
        i+=1
        with open(os.path.join(stage,"f%d" % i),"w") as f: f.write("real %d\n" % i)
        os.rename(os.path.join(stage,"f%d" % i), os.path.join(d,"f%d" % i))
        with open(made,"w") as f: f.write("%d\n" % i)
    os.rename(d,away); os.symlink(bait,d)
    time.sleep(random.random()*0.003)
    os.unlink(d); os.rename(away,d)
    time.sleep(random.random()*0.002)' "$base" "$bait" "$W/stop" "$W/made" $SWAP_MAX "$W/stage" &
	loop=$!
	BG+=("$loop")
	end=$(( $(date +%s) + SWAP_SECONDS ))
	rcs=
	while [ "$(date +%s)" -lt "$end" ]; do
		run_tool "$tool" "$W/err.$runs"
		rcs="$rcs $RC"; runs=$((runs + 1))
	done
	touch "$W/stop"; wait "$loop"
	made=$(cat "$W/made")
	echo "swap loop: $runs runs, $made files made, exit statuses:$rcs"
	cat "$W"/err.* | grep -vF "127.0.0.1:$ES_CLOSED_PORT/" | sort | uniq -c | sort -rn | head -20
	check "$name swap loop: many runs raced the swapper ($runs runs, $made files)" \
	    test "$runs" -ge 5 -a "$made" -ge 100
	check_eq "$name swap loop: every run exited 0 or 1" \
	    "$(tr ' ' '\n' <<<"$rcs" | grep -v '^$' | grep -cvE '^(0|1)$')" 0
	check "$name swap loop: the bait is whole and was never read" bait_untouched "$bait" $SWAP_MAX
	run_tool "$tool" "$W/err"
	check_eq "$name swap loop: a last run without the race exits 0" "$RC" 0
	check_eq "$name swap loop: nothing left in the tree" "$(local_files "$W/root")" ""
	check "$name swap loop: every file made is in S3 once, from the real folder, no bait" \
	    $IV race "${name#s3-}" "$b" "$made" "$FALLBACK_BUCKET"
	s3_rb "$b"
}
case_on swap_loop && swap_loop_case "$SYNC" s
case_on swap_loop && swap_loop_case "$BATCH" b

# ===== 7. /proc mounted with hidepid=2, run as nobody: it cannot see the
# other users' processes, says so once, and applies a settle time of at
# least 60 s: the file made at the start (over 60 s ago) goes, a fresh one
# stays.
hp_case() {	# tool tag
	local tool=$1 t=$2 name b=s3b-in-hidepid-$2 d=$U/hidepid-$2 wait_s
	name=$(basename "$tool")
	wait_s=$(( HP_T0 + 62 - $(date +%s) ))
	[ "$wait_s" -gt 0 ] && { echo "hidepid: waiting $wait_s s for the old file to settle"; sleep "$wait_s"; }
	echo "fresh $t" > "$d/root/$b/d/fresh.txt"
	chown nobody:nogroup "$d/root/$b/d/fresh.txt"
	mkdir -p "$d/mirror/$b/d"; echo "old $t" > "$d/mirror/$b/d/old.txt"
	S3_SYNC_BUCKETS_FOLDER=$d/root S3_BATCH_BUCKETS_FOLDER=$d/root \
	S3BATCH_SPOOL_DIR=$d/spool ELASTICSEARCH_LOGS_HOST=127.0.0.1 \
	ELASTICSEARCH_LOGS_PORT=$ES_CLOSED_PORT MANIFEST_FALLBACK_BUCKET=$FALLBACK_BUCKET \
	    timeout -k 5 120 unshare -m --propagation private -- sh -c \
	    'mount -t proc -o hidepid=2 proc /proc && exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$0" -vv' \
	    "$tool" 2>"$d/err"
	RC=$?; cat "$d/err"
	check_eq "$name hidepid: exit 0" "$RC" 0
	check_eq "$name hidepid: one warning that not every process can be read" \
	    "$(grep -c "warning: cannot read every process's open files" "$d/err")" 1
	check "$name hidepid: it names hidepid and the 60 s settle time" \
	    grep -q "hidepid.*at least 60 s" "$d/err"
	check "$name hidepid: the fresh file is left, within the settle time" \
	    grep -qE "'$b/d/fresh.txt': changed [0-9]+ s ago, within the settle time of 60 s" "$d/err"
	check_eq "$name hidepid: the fresh file stays, the old one went" \
	    "$(local_files "$d/root")" "$b/d/fresh.txt"
	if [ "$name" = s3-sync ]; then
		check "$name hidepid: the old file is in S3" $IV sync "$b" "$d/mirror/$b" "$FALLBACK_BUCKET"
	else
		check "$name hidepid: the old file is archived" $IV batch "$b" "$d/mirror/$b" "$FALLBACK_BUCKET"
	fi
	s3_rb "$b"
}
case_on hidepid && hp_case "$SYNC" s
case_on hidepid && hp_case "$BATCH" b

echo "elapsed $(( $(date +%s) - T0 )) s"
done_testing
