#!/usr/bin/env bash
# Kill test: s3-batch and s3-sync SIGKILLed at chosen system calls (strace
# --inject=SYSCALL:signal=KILL:when=N), then run again until they exit 0;
# after each kill point every original must be in S3 exactly once (s3-batch:
# in exactly one archive; s3-sync: its own object), in exactly one manifest
# (an OpenSearch document or a fallback entry), gone locally, with an empty
# spool and no open multipart upload.
#
# The kill points come from a dry traced run of each tool on the same tree:
# for each system call of interest, the first and the last call and the
# middle call of every phase it shows up in (tests/lib/kill_check.py plan).
# Then, for one kill point per tool that leaves sealed batches, the recovery
# run that follows is killed too, at calls in its recovery phase. Each kill
# point is labelled with the phase its killing call is in, read from the
# trace of the killed run. Last, the trace of a full s3-batch run shows that
# every unlink of an original follows the fsync of its archive and of the
# spool's batches/ directory.
#
# Runs are in a PID namespace (unshare -pf --mount-proc): the tool's scan of
# /proc/*/fd then sees the same processes every time, so the N-th call of a
# dry run is the N-th call of the killed run.
#
# KILL_QUICK=1 keeps only the first, middle and last call of each system
# call (for a quick look); the default is the full list.
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

# What is traced: every call a kill point is chosen from, and socket().
TRACESET=openat,open,mkdir,mkdirat,rename,renameat,renameat2,unlink,unlinkat
TRACESET=$TRACESET,rmdir,fsync,fdatasync,write,pwrite64,writev,sendto,sendmsg
TRACESET=$TRACESET,connect,socket
export S3BATCH_SETTLE_SECONDS=0 MAX_BATCH_SIZE_MB=8
export S3BATCH_MULTIPART_THRESHOLD_MB=5 S3BATCH_PART_SIZE_MB=5
unset S3BATCH_MAX_RUN_SECONDS S3BATCH_MAX_RUN_MB S3BATCH_IGNORE

s3_rb "$FALLBACK_BUCKET"; s3_mb "$FALLBACK_BUCKET"

# 12 files in the bucket's top, a/ and b/c/: 11 MiB alone in its archive and
# in 5 MiB parts; 3 MB files two to an 8 MiB archive; small ones.
make_tree() {
	local r=$W/root/$1
	mkdir -p "$r/a" "$r/b/c"
	head -c 100 /dev/urandom > "$r/t1.txt"
	head -c 300000 /dev/urandom > "$r/t2.bin"
	head -c 3000000 /dev/urandom > "$r/a/a1.bin"
	head -c 3000000 /dev/urandom > "$r/a/a2.bin"
	head -c 3000000 /dev/urandom > "$r/a/a3.bin"
	head -c 5000 /dev/urandom > "$r/a/a4.txt"
	head -c $((11 * 1024 * 1024)) /dev/urandom > "$r/a/big.bin"
	local i
	for i in 1 2 3 4 5; do
		head -c $((i * 1000)) /dev/urandom > "$r/b/c/f$i.dat"
	done
}

ctx() { # the trace context of kill_check.py for tool $1
	echo --tool "$1" --root "$W/root" --spool "$W/spool/s3-$1" \
	    --s3-port "$RGW_PORT" --es-port "$OS_PORT"
}

# traced_run TOOL TRACE [SYSCALL N]: one run under strace in a fresh PID
# namespace, SIGKILLed at the N-th SYSCALL when given; its exit status.
traced_run() {
	local tool=$1 trace=$2 inject=()
	[ $# -ge 4 ] && inject=(-e "inject=$3:signal=KILL:when=$4")
	timeout -k 5 120 unshare -pf --mount-proc \
	    strace -f -q -yy -o "$trace" -e "trace=$TRACESET" "${inject[@]}" \
	    "$S3B_BUILD/s3-$tool" </dev/null 2>>"$W/err" &
	wait $!
}

# finish TOOL: run again, without strace, until exit 0 (at most 3 runs);
# the first of them traced (no kill) for the recovery kill points.
finish() {
	local tool=$1 i rc
	for i in 1 2 3; do
		if [ "$i" = 1 ]; then
			traced_run "$tool" "$W/trace.recovery"; rc=$?
		else
			"$S3B_BUILD/s3-$tool" </dev/null 2>>"$W/err"; rc=$?
		fi
		echo "  run $i after the kill: exit $rc" >>"$W/err"
		[ "$rc" = 0 ] && { RUNS=$i; return 0; }
	done
	RUNS=$i
	return 1
}

declare -A COVER=()	# "tool phase" -> kill points
KILLS=0 LOST=0 DUPS=0 OTHER=0 POINT=0
KILLLIST=()

# scenario TOOL SYSCALL N [SYSCALL2 N2]: a fresh tree, a run killed at the
# N-th SYSCALL (and the next run, recovering, at the N2-th SYSCALL2), then
# runs until exit 0, then the invariant.
scenario() {
	local tool=$1 sys=$2 n=$3 sys2=${4:-} n2=${5:-} b label label2 rc
	local what="$tool $sys#$n${sys2:+ then $sys2#$n2}"
	POINT=$((POINT + 1))
	b=s3b-kill-$tool-$POINT
	new_work; tool_env
	export ELASTICSEARCH_LOGS_INDEX=s3b-kill-$tool
	make_tree "$b"
	python3 "$KC" expect "$W/root" "$W/expect" --create-bucket "$b"
	traced_run "$tool" "$W/trace.kill" "$sys" "$n"
	label=$(python3 "$KC" label "$W/trace.kill" $(ctx "$tool"))
	if [ -n "$sys2" ]; then
		traced_run "$tool" "$W/trace.kill2" "$sys2" "$n2"
		label2=$(python3 "$KC" label "$W/trace.kill2" $(ctx "$tool"))
		label="$label / $label2"
	fi
	if ! finish "$tool"; then
		not_ok "$what: later runs end with exit 0 (3 runs)"
		cat "$W/err"
	fi
	python3 "$KC" verify --tool "$tool" --expect "$W/expect" --bucket "$b" \
	    --root "$W/root" --spool "$W/spool/s3-$tool" --es-url "$ES_URL" \
	    --index "$ELASTICSEARCH_LOGS_INDEX" --fallback "$FALLBACK_BUCKET" \
	    --delete-bucket >"$W/verify" 2>&1
	local -A f=()
	local k v
	while read -r k v; do f[$k]=$v; done < <(grep -v '^problem: ' "$W/verify")
	grep '^problem: ' "$W/verify" | sed 's/^/    /'
	local phase=${label2:-$label}
	phase=$(awk '{print $3}' <<<"${label2:-$label}")
	case "$label${label2:-}" in
	*not-killed*)
		not_ok "$what: the run was killed (label: $label)"
		;;
	*)
		KILLS=$((KILLS + 1))
		COVER["$tool $phase"]=$(( ${COVER["$tool $phase"]:-0} + 1 ))
		KILLLIST+=("$(printf '%-9s %-38s %-17s %s' "s3-$tool" \
		    "$sys#$n${sys2:+ + $sys2#$n2}" "$phase" \
		    "$(awk '{print $4}' <<<"${label2:-$label}" |
		    sed "s|$W/||; s|/tmp/[^ ]*/root/||")")")
		;;
	esac
	local lost=$(( ${f[lost]:-99} + ${f[corrupt]:-0} + ${f[manifest_missing]:-0} ))
	local dup=$(( ${f[duplicated]:-99} + ${f[manifest_dup]:-0} ))
	local other=$(( ${f[local_left]:-99} + ${f[spool_left]:-0} + \
	    ${f[open_uploads]:-0} + ${f[unexpected]:-0} + ${f[manifest_wrong]:-0} ))
	LOST=$((LOST + lost)) DUPS=$((DUPS + dup)) OTHER=$((OTHER + other))
	echo "# $what -> $label; runs after: $RUNS;" \
	    "objects/archives checked, es docs ${f[manifest_es]:-?}," \
	    "fallback entries ${f[manifest_fallback]:-?}"
	check_eq "$what: ${f[originals]:-?} originals in S3 exactly once (lost, duplicated)" \
	    "${f[lost]:-?} ${f[corrupt]:-?} ${f[duplicated]:-?} ${f[unexpected]:-?}" "0 0 0 0"
	check_eq "$what: in exactly one manifest with the right key (missing, twice, wrong)" \
	    "${f[manifest_missing]:-?} ${f[manifest_dup]:-?} ${f[manifest_wrong]:-?}" "0 0 0"
	check_eq "$what: originals gone, spool empty, no open multipart upload" \
	    "${f[local_left]:-?} ${f[spool_left]:-?} ${f[open_uploads]:-?}" "0 0 0"
	cp "$W/trace.recovery" "$S3B_TMP/last-recovery.$tool" 2>/dev/null
}

# plan TOOL: a dry traced run; its kill points in $S3B_TMP/points.TOOL, one
# "SYSCALL N PHASE DETAIL" a line.
plan() {
	local tool=$1 b=s3b-kill-$tool-dry
	new_work; tool_env
	export ELASTICSEARCH_LOGS_INDEX=s3b-kill-$tool
	make_tree "$b"
	python3 "$KC" expect "$W/root" "$W/expect" --create-bucket "$b"
	traced_run "$tool" "$W/trace.dry"
	local rc=$?
	check_eq "s3-$tool: the dry traced run exits 0" "$rc" 0
	python3 "$KC" verify --tool "$tool" --expect "$W/expect" --bucket "$b" \
	    --root "$W/root" --spool "$W/spool/s3-$tool" --es-url "$ES_URL" \
	    --index "$ELASTICSEARCH_LOGS_INDEX" --fallback "$FALLBACK_BUCKET" \
	    --delete-bucket >"$W/verify" 2>&1
	grep '^problem: ' "$W/verify" | sed 's/^/    /'
	check "s3-$tool: the dry run leaves the invariant true" \
	    bash -c "! grep -q '^problem' '$W/verify'"
	cp "$W/trace.dry" "$S3B_TMP/dry-trace.$tool"
	eval "DRYW_$tool=\$W"
	python3 "$KC" plan "$W/trace.dry" $(ctx "$tool") ${KILL_QUICK:+--quick} \
	    >"$S3B_TMP/points.$tool"
}

for tool in batch sync; do
	t1=$(date +%s)
	plan "$tool"
	echo "# s3-$tool: $(wc -l <"$S3B_TMP/points.$tool") kill points from the dry run"
	first_seal=
	while read -r sys n phase _ <&3; do
		[ -n "$sys" ] || continue
		scenario "$tool" "$sys" "$n"
		# a kill that leaves sealed batches for the recovery kills
		# (s3-batch: the last sendto of the upload phase in the plan,
		# with records of open multipart uploads; s3-sync: an unlink
		# of an original, with some originals still there)
		if { [ "$tool/$sys/$phase" = batch/sendto/upload ] && [ "$n" -gt 1 ]; } ||
		    { [ -z "$first_seal" ] &&
		    [ "$tool/$sys/$phase" = sync/unlinkat/unlink-originals ]; }; then
			first_seal="$sys $n"
			cp "$S3B_TMP/last-recovery.$tool" "$S3B_TMP/recovery-trace.$tool"
			RW=$W
		fi
	done 3<"$S3B_TMP/points.$tool"
	# the run after that kill, killed in its recovery phase
	if [ -n "$first_seal" ]; then
		W=$RW
		rpoints=$(python3 "$KC" plan "$S3B_TMP/recovery-trace.$tool" \
		    $(ctx "$tool") --only-phase recover \
		    --families openat,mkdirat,write,fsync,renameat,unlinkat,connect,sendto)
		echo "# s3-$tool: $(wc -l <<<"$rpoints") recovery kill points after $first_seal"
		while read -r sys n phase _ <&3; do
			[ -n "$sys" ] || continue
			scenario "$tool" $first_seal "$sys" "$n"
		done 3<<<"$rpoints"
	else
		not_ok "s3-$tool: a kill point that leaves sealed batches"
	fi
	echo "# s3-$tool: $(( $(date +%s) - t1 )) s"
done

# Trace evidence: in a full s3-batch run, every unlink of an original comes
# after the fsync of its archive, of its manifest and of batches/.
W=$DRYW_batch
python3 "$KC" order "$S3B_TMP/dry-trace.batch" $(ctx batch) >"$S3B_TMP/order" 2>&1
rc=$?
grep -v '^ordered:' "$S3B_TMP/order"
sed -n 's/^ordered: /# /p' "$S3B_TMP/order" | head -3
check_eq "trace: every unlink of an original after the fsync of its archive and of batches/" "$rc" 0

echo "# kill points (tool, syscall#N, phase, path or port at the kill):"
for l in "${KILLLIST[@]}"; do echo "#   $l"; done
echo "# coverage per phase (s3-batch / s3-sync):"
for ph in recover walk stage seal unlink-originals upload index release; do
	nb=${COVER["batch $ph"]:-0} ns=${COVER["sync $ph"]:-0}
	echo "#   $(printf '%-17s %3d / %3d' "$ph" "$nb" "$ns")"
	check "phase $ph covered by a kill point" test $((nb + ns)) -gt 0
done
check "at least 30 kill points ($KILLS)" test "$KILLS" -ge 30
echo "kill points: $KILLS; lost: $LOST; duplicated: $DUPS; other faults: $OTHER; $(( $(date +%s) - T0 )) s"
check_eq "kill test: nothing lost, nothing duplicated" "$LOST $DUPS $OTHER" "0 0 0"
s3_rb "$FALLBACK_BUCKET"
done_testing
