#!/usr/bin/env bash
# Kill test: s3-batch and s3-sync SIGKILLed at chosen system calls (strace
# -e inject=SYSCALL:signal=KILL:when=N), then run again until they exit 0
# (at most 3 runs). After each kill point every original must be in S3
# exactly once (s3-batch: in exactly one archive; s3-sync: as its own
# object, same bytes), in exactly one manifest (one OpenSearch document or
# one fallback entry, with the key of the object that holds it), gone
# locally, with an empty spool and no open multipart upload.
#
# Kill points come from a dry traced run of each tool on the same tree
# (tests/lib/kill_check.py plan): the first and the last call of fsync,
# rename*, unlink*, connect and sendto; the middle call of each group of
# system calls in each phase of the run (for fsync, rename* and unlink*: of
# each kind of thing they work on in each phase); the first open or mkdir
# of each phase; the first and the last unlink of an original. Then a few kill points that leave sealed batches (see
# again() below) are repeated with the recovery run that follows killed
# too, at calls of its recovery phase. Each kill point is labelled
# with the phase of the call it was killed at, read from the killed run's
# trace. Last, the dry trace of s3-batch shows that every unlink of an
# original comes after the fsync of its archive, of its manifest and of the
# spool's batches/ directory after the batch was renamed into it.
#
# Runs are in a fresh PID namespace (unshare -pf --mount-proc): the tool's
# scan of /proc/*/fd sees the same processes each time, so the N-th call of
# the dry run is the N-th call of the killed run.
#
#   KILL_QUICK=1   only the first, middle and last call of each group of
#                  system calls and the first open of each phase (about
#                  two thirds of the kill points, for a quick look)
#   KILL_TIMING=1  where the time of each kill point goes
. "$S3B_TOP/tests/lib/common.sh"
KC=$S3B_TOP/tests/lib/kill_check.py
T0=$(date +%s)

export OS_PORT=${KILL_OS_PORT:-49200}
export OS_ROOT=$S3B_TMP/kill-opensearch
export FALLBACK_BUCKET=s3b-kill-fallback
stop_os() { "$S3B_TOP/tests/lib/opensearch.sh" stop >/dev/null 2>&1; }
trap stop_os EXIT
if ! "$S3B_TOP/tests/lib/opensearch.sh" start >"$S3B_TMP/kill-os.log" 2>&1; then
	cat "$S3B_TMP/kill-os.log"
	not_ok "OpenSearch started on 127.0.0.1:$OS_PORT"
	done_testing
	exit 1
fi
ES_URL=http://127.0.0.1:$OS_PORT
echo "# OpenSearch up on $ES_URL after $(( $(date +%s) - T0 )) s"

# kc OUTFILE ARGS...: kill_check.py ARGS through one Python process for the
# whole test (botocore starts once), output into OUTFILE; its status.
coproc KCS { exec python3 "$KC" serve; }
kc() {
	local reply
	printf '%q ' "$@" >&"${KCS[1]}"
	echo >&"${KCS[1]}"
	read -r reply <&"${KCS[0]}" || return 98
	return "${reply#rc }"
}

# Traced: every call a kill point is chosen from, and socket().
TRACESET=openat,open,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat
TRACESET=$TRACESET,rmdir,fsync,fdatasync,write,pwrite64,writev,sendto,sendmsg
TRACESET=$TRACESET,connect,socket
export S3BATCH_SETTLE_SECONDS=0 MAX_BATCH_SIZE_MB=8
export S3BATCH_MULTIPART_THRESHOLD_MB=5 S3BATCH_PART_SIZE_MB=5
unset S3BATCH_MAX_RUN_SECONDS S3BATCH_MAX_RUN_MB S3BATCH_IGNORE

s3_rb "$FALLBACK_BUCKET"; s3_mb "$FALLBACK_BUCKET"

# The tree each kill point starts from, made once: 12 files in the bucket's
# top, a/ and b/c/: 11 MiB (alone in its archive, 3 parts of 5 MiB), three
# of 3 MB (two to an 8 MiB archive), small ones; their sha256 and size.
TEMPLATE=$S3B_TMP/kill-template
mkdir -p "$TEMPLATE/b/a" "$TEMPLATE/b/b/c"
head -c 100 /dev/urandom > "$TEMPLATE/b/t1.txt"
head -c 300000 /dev/urandom > "$TEMPLATE/b/t2.bin"
head -c 3000000 /dev/urandom > "$TEMPLATE/b/a/a1.bin"
head -c 3000000 /dev/urandom > "$TEMPLATE/b/a/a2.bin"
head -c 3000000 /dev/urandom > "$TEMPLATE/b/a/a3.bin"
head -c 5000 /dev/urandom > "$TEMPLATE/b/a/a4.txt"
head -c $((11 * 1024 * 1024)) /dev/urandom > "$TEMPLATE/b/a/big.bin"
for i in 1 2 3 4 5; do
	head -c $((i * 1000)) /dev/urandom > "$TEMPLATE/b/b/c/f$i.dat"
done
python3 "$KC" expect "$TEMPLATE" "$TEMPLATE.expect"

# make_tree BUCKET: the template's files, new ones, under $W/root/BUCKET;
# what is expected of them in $W/expect.
make_tree() {
	mkdir -p "$W/root"
	cp -R "$TEMPLATE/b" "$W/root/$1"
	sed "s|^b\t|$1\t|" "$TEMPLATE.expect" >"$W/expect"
}

ctx() { # kill_check.py's trace context for tool $1 in $W
	echo --tool "$1" --root "$W/root" --spool "$W/spool/s3-$1" \
	    --s3-port "$RGW_PORT" --es-port "$OS_PORT"
}

# traced_run TOOL TRACE [SYSCALL N]: one run under strace in a fresh PID
# namespace, SIGKILLed at its N-th SYSCALL when given; its exit status.
traced_run() {
	local tool=$1 trace=$2 inject=()
	[ $# -ge 4 ] && inject=(-e "inject=$3:signal=KILL:when=$4")
	# in the background: bash says nothing of a job killed by a signal
	timeout -k 5 120 unshare -pf --mount-proc \
	    strace -f -q -yy -o "$trace" -e "trace=$TRACESET" "${inject[@]}" \
	    "$S3B_BUILD/s3-$tool" </dev/null 2>>"$W/err" &
	wait $!
}

# finish TOOL: run again until exit 0, at most 3 runs; with TRACE_NEXT set,
# the first of them traced (no kill) for recovery kill points.
finish() {
	local tool=$1 i rc
	for i in 1 2 3; do
		if [ "$i" = 1 ] && [ -n "${TRACE_NEXT:-}" ]; then
			traced_run "$tool" "$W/trace.next"; rc=$?
		else
			timeout -k 5 120 "$S3B_BUILD/s3-$tool" </dev/null \
			    2>>"$W/err"; rc=$?
		fi
		echo "run $i after the kill: exit $rc" >>"$W/err"
		RUNS=$i
		[ "$rc" = 0 ] && return 0
	done
	return 1
}

# verify TOOL BUCKET [TRACE...]: the invariant, figures into F[]; the
# bucket is deleted after.
declare -A F
verify() {
	local tool=$1 b=$2 k v t labels=()
	shift 2
	for t in "$@"; do labels+=(--label "$t"); done
	kc "$W/verify" verify --tool "$tool" --expect "$W/expect" --bucket "$b" \
	    --root "$W/root" --spool "$W/spool/s3-$tool" --es-url "$ES_URL" \
	    --index "$ELASTICSEARCH_LOGS_INDEX" --fallback "$FALLBACK_BUCKET" \
	    --s3-port "$RGW_PORT" --es-port "$OS_PORT" "${labels[@]}" \
	    --delete-bucket
	F=()
	while read -r k v; do F[$k]=$v; done < <(grep -v '^problem: ' "$W/verify")
	grep '^problem: \|Traceback\|Error' "$W/verify" | sed 's/^/    /'
}

# KILL_TIMING=1: where the time of each kill point goes
TM=0
tm() {
	[ -n "${KILL_TIMING:-}" ] || return 0
	local now=$(date +%s%N)
	[ "$1" = start ] || echo "# time $1: $(( (now - TM) / 1000000 )) ms"
	TM=$now
}

declare -A COVER=()	# "tool phase" -> kill points
KILLS=0 LOST=0 DUPS=0 OTHER=0 POINT=0
KILLLIST=()

killed() { grep -q '+++ killed by SIGKILL' "$1"; }

# scenario TOOL SYSCALL N [SYSCALL2 N2]: a fresh tree in a fresh bucket,
# a run killed at the N-th SYSCALL (and the next one, recovering, at the
# N2-th SYSCALL2), runs until exit 0, the invariant.
scenario() {
	local tool=$1 sys=$2 n=$3 sys2=${4:-} n2=${5:-} b traces label phase
	local what="s3-$tool $sys#$n${sys2:+ + $sys2#$n2}"
	POINT=$((POINT + 1))
	b=s3b-kill-$tool-$POINT
	export ELASTICSEARCH_LOGS_INDEX=s3b-kill-$tool
	local attempt m
	for attempt in 1 2; do
		new_work; tool_env
		tm start
		make_tree "$b"
		tm tree
		traced_run "$tool" "$W/trace.kill" "$sys" "$n"
		traces=("$W/trace.kill")
		if [ -n "$sys2" ] && killed "$W/trace.kill"; then
			traced_run "$tool" "$W/trace.kill2" "$sys2" "$n2"
			traces+=("$W/trace.kill2")
		fi
		tm kill
		[ "$attempt" = 2 ] && break
		# a run made fewer calls than the dry run (connections
		# reused, sends cut otherwise): again, killed at its last one
		if ! killed "$W/trace.kill"; then
			kc "$W/count" count "$W/trace.kill" $(ctx "$tool") "$sys"
			m=$(cat "$W/count")
			[ "${m:-0}" -ge 1 ] 2>/dev/null || break
			echo "# $what: the run made $m calls of $sys, not $n; again at $sys#$m"
			n=$m
		elif [ -n "$sys2" ] && ! killed "$W/trace.kill2"; then
			kc "$W/count" count "$W/trace.kill2" $(ctx "$tool") "$sys2"
			m=$(cat "$W/count")
			[ "${m:-0}" -ge 1 ] 2>/dev/null || break
			echo "# $what: the recovery made $m calls of $sys2, not $n2; again at $sys2#$m"
			n2=$m
		else
			break
		fi
		what="s3-$tool $sys#$n${sys2:+ + $sys2#$n2}"
		kc "$W/verify" verify --tool "$tool" --expect "$W/expect" \
		    --bucket "$b" --root "$W/root" --spool "$W/spool/s3-$tool" \
		    --es-url "$ES_URL" --index "$ELASTICSEARCH_LOGS_INDEX" \
		    --fallback "$FALLBACK_BUCKET" --delete-bucket
		kc "$W/mkbuckets" mkbuckets "$b"
	done
	finish "$tool" ||
	    not_ok "$what: a later run exits 0 ($(tr '\n' ' ' <"$W/err"))"
	tm finish
	verify "$tool" "$b" "${traces[@]}"
	tm verify
	label="${F[label1]:-?}${sys2:+ / ${F[label2]:-?}}"
	phase=$(awk '{print $3}' <<<"${F[label2]:-${F[label1]:-}}")
	if [[ "$label" == *not-killed* || "$label" == *'?'* ]]; then
		not_ok "$what: the run is killed there ($label)"
	else
		KILLS=$((KILLS + 1))
		COVER["$tool $phase"]=$(( ${COVER["$tool $phase"]:-0} + 1 ))
		KILLLIST+=("$(printf '%-9s %-28s %-17s %s' "s3-$tool" \
		    "$sys#$n${sys2:+ + $sys2#$n2}" "$phase" \
		    "$(awk '{print $4}' <<<"${F[label2]:-${F[label1]}}" |
		    sed "s|$W/||g")")")
	fi
	LOST=$((LOST + ${F[lost]:-1} + ${F[corrupt]:-0} + ${F[manifest_missing]:-0}))
	DUPS=$((DUPS + ${F[duplicated]:-1} + ${F[manifest_dup]:-0}))
	OTHER=$((OTHER + ${F[local_left]:-1} + ${F[spool_left]:-0} + \
	    ${F[open_uploads]:-0} + ${F[unexpected]:-0} + ${F[manifest_wrong]:-0}))
	echo "# $what: killed at ${label//$W\//}; $RUNS run(s) after;" \
	    "${F[manifest_es]:-?} documents, ${F[manifest_fallback]:-?} fallback entries"
	check_eq "$what: ${F[originals]:-?} originals in S3 once (lost corrupt duplicated unexpected)" \
	    "${F[lost]:-?} ${F[corrupt]:-?} ${F[duplicated]:-?} ${F[unexpected]:-?}" "0 0 0 0"
	check_eq "$what: each in exactly one manifest, right key and offset (missing twice wrong)" \
	    "${F[manifest_missing]:-?} ${F[manifest_dup]:-?} ${F[manifest_wrong]:-?}" "0 0 0"
	check_eq "$what: originals gone, spool empty, no open multipart upload" \
	    "${F[local_left]:-?} ${F[spool_left]:-?} ${F[open_uploads]:-?}" "0 0 0"
}

# plan TOOL: a dry traced run (checked too); its kill points in
# $S3B_TMP/points.TOOL, "SYSCALL N PHASE WHAT" a line.
plan() {
	local tool=$1 b=s3b-kill-$tool-dry rc
	new_work; tool_env
	export ELASTICSEARCH_LOGS_INDEX=s3b-kill-$tool
	kc "$W/mkbuckets" mkbuckets "$b"
	make_tree "$b"
	traced_run "$tool" "$W/trace.dry"; rc=$?
	check_eq "s3-$tool: the dry traced run exits 0" "$rc" 0
	verify "$tool" "$b"
	check_eq "s3-$tool: after the dry run (lost duplicated missing twice left spool uploads)" \
	    "${F[lost]:-?} ${F[duplicated]:-?} ${F[manifest_missing]:-?} ${F[manifest_dup]:-?} ${F[local_left]:-?} ${F[spool_left]:-?} ${F[open_uploads]:-?}" \
	    "0 0 0 0 0 0 0"
	cp "$W/trace.dry" "$S3B_TMP/dry-trace.$tool"
	eval "DRYW_$tool=\$W"
	python3 "$KC" plan "$W/trace.dry" $(ctx "$tool") ${KILL_QUICK:+--quick} \
	    >"$S3B_TMP/points.$tool"
}

# The kills to repeat with the recovery run that follows killed too (their
# first later run is traced, and kill points are chosen in its recovery):
# s3-batch at its first connect (every archive sealed, none uploaded) and
# at the middle sendto of the upload phase (some archives up, multipart
# uploads open and recorded); s3-sync at the first unlink of an original (a
# sealed batch, its originals still there).
declare -A AGAIN=()
again() { # TOOL SYSCALL N PHASE; each rule once
	local rule=$1/$2/$4
	[ -z "${AGAIN[$rule]:-}" ] || return 1
	case "$rule" in
	batch/connect/upload) [ "$3" = 1 ] ;;
	batch/sendto/upload) [ "$3" -gt 1 ] ;;
	sync/unlinkat/unlink-originals) true ;;
	*) false ;;
	esac || return 1
	AGAIN[$rule]=$3
}

for tool in batch sync; do
	t1=$(date +%s)
	plan "$tool"
	npoints=$(wc -l <"$S3B_TMP/points.$tool")
	echo "# s3-$tool: $npoints kill points from the dry run"
	kc "$S3B_TMP/mkbuckets" mkbuckets $(seq -f "s3b-kill-$tool-%g" $((POINT + 1)) $((POINT + npoints)))
	repeat=()
	while read -r sys n phase _ <&3; do
		TRACE_NEXT=
		again "$tool" "$sys" "$n" "$phase" && TRACE_NEXT=1
		scenario "$tool" "$sys" "$n"
		if [ -n "$TRACE_NEXT" ] && [ -s "$W/trace.next" ]; then
			cp "$W/trace.next" "$S3B_TMP/recovery-trace.$tool.${#repeat[@]}"
			repeat+=("$sys $n $W")
		fi
	done 3<"$S3B_TMP/points.$tool"
	TRACE_NEXT=
	[ "${#repeat[@]}" -gt 0 ] ||
	    not_ok "s3-$tool: a kill point to repeat with the recovery killed"
	for i in "${!repeat[@]}"; do
		read -r sys1 n1 W <<<"${repeat[$i]}"
		python3 "$KC" plan "$S3B_TMP/recovery-trace.$tool.$i" $(ctx "$tool") \
		    --only-phase recover \
		    --families openat,fsync,renameat,unlinkat,connect,sendto \
		    >"$S3B_TMP/rpoints.$tool.$i"
		npoints=$(wc -l <"$S3B_TMP/rpoints.$tool.$i")
		echo "# s3-$tool: $npoints kill points in the recovery after $sys1#$n1"
		kc "$S3B_TMP/mkbuckets" mkbuckets $(seq -f "s3b-kill-$tool-%g" $((POINT + 1)) $((POINT + npoints)))
		while read -r sys n phase _ <&3; do
			scenario "$tool" "$sys1" "$n1" "$sys" "$n"
		done 3<"$S3B_TMP/rpoints.$tool.$i"
	done
	echo "# s3-$tool: $(( $(date +%s) - t1 )) s"
done

# Trace evidence, from the dry run of s3-batch (strace -f -yy, fsync,
# rename*, unlink* and openat among the calls traced).
W=$DRYW_batch
python3 "$KC" order "$S3B_TMP/dry-trace.batch" $(ctx batch) >"$S3B_TMP/order" 2>&1
rc=$?
echo "# trace of a full s3-batch run ($S3B_TMP/dry-trace.batch):"
sed 's/^ordered: /#   /; s/^/# /; s/^# #/#/' "$S3B_TMP/order"
check_eq "trace: every unlink of an original after the fsync of its archive, its manifest and batches/" "$rc" 0

echo "# kill points (tool, syscall#N [+ syscall#N of the recovery run], phase, at):"
for l in "${KILLLIST[@]}"; do echo "#   $l"; done
echo "# coverage per phase (s3-batch / s3-sync):"
for ph in recover walk stage seal unlink-originals upload index release; do
	nb=${COVER["batch $ph"]:-0} ns=${COVER["sync $ph"]:-0}
	echo "#   $(printf '%-17s %3d / %3d' "$ph" "$nb" "$ns")"
	check "phase $ph: a kill point" test $((nb + ns)) -gt 0
done
check "at least 30 kill points ($KILLS)" test "$KILLS" -ge 30
s3_rb "$FALLBACK_BUCKET"
echo "kill points: $KILLS; lost: $LOST; duplicated: $DUPS; other faults: $OTHER; $(( $(date +%s) - T0 )) s"
check_eq "kill points: nothing lost, nothing duplicated, no other fault" "$LOST $DUPS $OTHER" "0 0 0"
done_testing
