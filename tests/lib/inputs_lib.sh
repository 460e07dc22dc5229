# inputs_lib.sh: helpers of test_inputs.sh and test_diskfull.sh, sourced
# after common.sh.
IV="python3 $S3B_TOP/tests/lib/inputs_verify.py"
BATCH=$S3B_BUILD/s3-batch SYNC=$S3B_BUILD/s3-sync
FALLBACK_BUCKET=${FALLBACK_BUCKET:-s3b-fallback}

# ElasticSearch is not started: every manifest goes to the fallback bucket.
# A closed port would do, but a refused connection is retried for ~11 s a
# run; the project's fault proxy answering 400 to everything fails it at
# once (es_refusing_start sets ES_CLOSED_PORT to its port). Each run warns
# about ElasticSearch; unexpected_lines drops those lines.
ES_CLOSED_PORT=${ES_CLOSED_PORT:-9}
es_refusing_start() {
	coproc ESREF { exec python3 "$S3B_TOP/tests/lib/faultproxy.py" \
	    --listen 127.0.0.1:0 --upstream 127.0.0.1:9 --faults \
	    '[{"name":"es refuses","match":{},"action":"status","status":400,"code":"BadRequest"}]'; }
	local line
	read -r -t 20 line <&"${ESREF[0]}" || { echo "es stand-in did not start"; return 1; }
	ES_CLOSED_PORT=${line##*:}
}
es_refusing_stop() {
	[ -n "${ESREF_PID:-}" ] || return 0
	kill "$ESREF_PID" 2>/dev/null; wait "$ESREF_PID" 2>/dev/null
	ESREF_PID=
}

# Non-directories under a dir (symlinks, FIFOs... included), as hex of the
# relative path bytes, sorted: exact whatever the names hold.
left_hex() {
	python3 -c 'import os,sys
top=os.fsencode(sys.argv[1]); out=[]
for d,ds,fs in os.walk(top):
    for n in fs+[x for x in ds if os.path.islink(os.path.join(d,x))]:
        out.append(os.path.relpath(os.path.join(d,n),top).hex())
print("\n".join(sorted(out)))' "$1"
}

# Lines of the error output that name "'shown': reason".
warn_count() { grep -cF -- "'$2': $3" "$1"; }

# The lines of $1 that are not ElasticSearch noise and not one of the
# expected warnings in $2 ("shown<TAB>reason" lines).
unexpected_lines() {
	local err=$1 want=$2
	python3 -c 'import sys
want=[l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if l.strip()]
for line in open(sys.argv[1], errors="surrogateescape"):
    line=line.rstrip("\n")
    if "127.0.0.1:'"$ES_CLOSED_PORT"'/" in line: continue
    if any(("'"'"'%s'"'"': %s" % (s, r)) in line for s, r in want): continue
    print(line)' "$err" "$want"
}

# A run of a tool with a deadline: sets RC (124 when it had to be killed).
run_tool() {	# tool errfile [args...]
	local tool=$1 err=$2; shift 2
	timeout -k 5 "${RUN_TIMEOUT:-120}" "$tool" "$@" 2>"$err"
	RC=$?
}

# Wait until pid is stopped in syscall nr (x86_64 numbers: openat 257,
# pread64 17, fsync 74) on a descriptor (its first argument) open on path
# (a glob), and stays
# there: strace's delay_enter is holding it. The dynamic loader's own
# openat and pread64 calls do not count.
wait_in_syscall() {	# pid nr path [timeout s]
	local pid=$1 nr=$2 path=$3 end=$(( $(date +%s) + ${4:-30} )) a b fd
	while [ "$(date +%s)" -lt "$end" ]; do
		a=$(cat "/proc/$pid/syscall" 2>/dev/null) || return 1
		if [ "${a%% *}" = "$nr" ]; then
			fd=$(( $(cut -d' ' -f2 <<<"$a") ))
			# shellcheck disable=SC2053
			if [[ "$(readlink "/proc/$pid/fd/$fd" 2>/dev/null)" == $path ]]; then
				sleep 0.2
				b=$(cat "/proc/$pid/syscall" 2>/dev/null) || return 1
				[ "$a" = "$b" ] && return 0
			fi
		fi
		sleep 0.02
	done
	return 1
}

# The pid of the traced tool under a strace started in the background.
traced_pid() {	# strace pid
	local i c
	for i in $(seq 1 100); do
		c=$(pgrep -P "$1" | head -1)
		[ -n "$c" ] && { echo "$c"; return 0; }
		sleep 0.05
	done
	return 1
}

spool_clean() {	# spool dir, tool: no batch, no staging directory left
	test -z "$(ls -A "$1/$2/batches" 2>/dev/null)$(ls -d "$1/$2"/work.* 2>/dev/null)"
}

# common.sh's s3_rb through boto3's batch delete: buckets of a thousand
# objects go in a second, not a minute.
s3_rb() { $IV rb "$1" >/dev/null 2>&1 || aws s3 rb "s3://$1" --force >/dev/null 2>&1 || true; }
# A fresh empty bucket, in one call (awscli's start-up is slow under load).
s3_reset() { $IV reset "$1" >/dev/null || { s3_rb "$1"; s3_mb "$1"; }; }
# common.sh's s3_keys through boto3 (one key a line, sorted by bytes).
s3_keys() { $IV list "$1" | LC_ALL=C sort; }
