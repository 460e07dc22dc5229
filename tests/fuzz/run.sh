#!/usr/bin/env bash
# tests/fuzz/run.sh - run libFuzzer targets built by Makefile.fuzz, one
# after the other, each on its committed corpus for a bounded time.
#
# usage: tests/fuzz/run.sh [target...]     (default: every fuzz_* built)
#
# environment:
#   FUZZ_B        build directory with the fuzz_* binaries (build-fuzz)
#   FUZZ_SECONDS  seconds per target (60)
#   FUZZ_RUNS     stop a target after this many executions too (0: none)
#   FUZZ_MERGE    1: merge what was found into tests/fuzz/corpus/<target>
#                 (-merge=1 keeps only inputs that add coverage)
#   FUZZ_JOBS     targets run at once (1)
#   FUZZ_ARGS     extra libFuzzer flags
#
# Scratch corpora, logs and crash inputs go under $FUZZ_B/run/<target>/;
# the committed corpus is only read unless FUZZ_MERGE=1. A line per target
# gives executions, speed, coverage and features; exit 1 when a target
# crashed, leaked, timed out or broke an invariant (its input is named).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=${FUZZ_B:-$ROOT/build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
RUNS=${FUZZ_RUNS:-0}
MERGE=${FUZZ_MERGE:-0}
JOBS=${FUZZ_JOBS:-1}

if [ $# -eq 0 ]; then
	set -- $(cd "$B" && ls fuzz_* 2>/dev/null | sed 's/^fuzz_//')
fi
if [ $# -eq 0 ]; then
	echo "fuzz: no targets in $B (make -f tests/fuzz/Makefile.fuzz)" >&2
	exit 2
fi

# "fuzz: <target> <execs> execs in <s> s, cov: <edges> ft: <features>
# corp: <files>/<bytes>" from libFuzzer's last status line and final stats.
report() {
	local last stats
	last=$(grep -E '^#[0-9]+[[:space:]]' "$2" | tail -1 |
	    grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*')
	stats=$(sed -n \
	    's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 execs in \2 s/p' "$2")
	printf 'fuzz: %-11s %s, %s\n' "$1" "${stats:-(no final stats)}" \
	    "${last:-no coverage line}"
}

# One target: fuzz, then report (and merge). 0 when nothing was found.
fuzz_one() {
	local t=$1 bin="$B/fuzz_$1" work="$B/run/$1" corpus="$HERE/corpus/$1"
	local dict="$HERE/dict/$1.dict" args=() rc maxlen
	if [ ! -x "$bin" ]; then
		echo "fuzz: $t: no binary $bin" >&2
		return 1
	fi
	mkdir -p "$work/new" "$work/crashes" "$corpus"
	[ -f "$dict" ] && args+=("-dict=$dict")
	case $t in
	creds_sts) maxlen=70000 ;;	# past its 16 KiB field, 64 KiB body caps
	*) maxlen=8192 ;;
	esac
	[ "$RUNS" -gt 0 ] && args+=("-runs=$RUNS")
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
	    -max_len="$maxlen" -print_final_stats=1 \
	    -artifact_prefix="$work/crashes/" "${args[@]}" ${FUZZ_ARGS:-} \
	    "$work/new" "$corpus" >"$work/log" 2>&1
	rc=$?
	report "$t" "$work/log"
	if [ "$rc" -ne 0 ]; then
		echo "fuzz: $t: FAILED (exit $rc), log $work/log" >&2
		grep -E 'ERROR:|runtime error|invariant broken|Test unit written' \
		    "$work/log" | head -5 >&2
		return 1
	fi
	if [ "$MERGE" = 1 ]; then
		"$bin" -merge=1 -max_len="$maxlen" "${args[@]}" "$corpus" \
		    "$work/new" \
		    >"$work/merge.log" 2>&1 ||
		    { echo "fuzz: $t: merge failed, $work/merge.log" >&2; return 1; }
		echo "fuzz: $t: corpus now $(ls "$corpus" | wc -l) files"
	fi
	return 0
}

# Stacks for UBSan findings too; a finding stops the target.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
running=0
for t in "$@"; do
	if [ "$JOBS" -le 1 ]; then
		fuzz_one "$t" || failed=1
		continue
	fi
	fuzz_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$JOBS" ]; then
		wait -n || failed=1
		running=$((running - 1))
	fi
done
while [ "$running" -gt 0 ]; do
	wait -n || failed=1
	running=$((running - 1))
done
[ "$failed" -eq 0 ] && echo "fuzz: $# targets, no crash"
exit "$failed"
