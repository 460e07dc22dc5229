#!/usr/bin/env bash
# tests/bench/run.sh (make bench): s3-sync and s3-batch against their peers
# on a throwaway single-node Ceph radosgw on 127.0.0.1 (and OpenSearch where
# a case says so). See tests/bench/README.md for the cases, the output lines
# and the knobs; scripts/setup-bench.sh installs the peers.
#
# Every run of every tool writes to a new, empty bucket; the server is wiped
# and started again (ceph.sh start, about 4 s) at the start of every case and
# whenever what the runs since stored would pass 4 GiB or 250,000 objects, so
# it never fills and never reclaims deleted data in the middle of a run.
# (Measured here: 200,000 objects already stored make no difference to the
# speed of the next 2,000 PUTs.) Every run gets its own fresh copy of the data (s3-sync and s3-batch delete their originals), made
# and synced to disk before the clock starts. Rounds interleave the tools
# (run 1 of every tool, then run 2...), so a noisy minute hits all of them.
set -uo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$TOP/tests/bench
BIN=${S3B_BIN_DIR:-$TOP/build}
CEPH_SH=$TOP/tests/lib/ceph.sh
OS_SH=$TOP/tests/lib/opensearch.sh

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then RUNS=${BENCH_RUNS:-1}; else RUNS=${BENCH_RUNS:-3}; fi
CONC=${S3BATCH_CONCURRENCY:-16}
SELECT=${BENCH_CASES:-all}
TOOLSEL=${BENCH_TOOLS:-all}
SYNC_ES=${BENCH_SYNC_ES:-down up}
WORK=${BENCH_DIR:-/tmp/s3b-bench}
WRK_SECONDS=${BENCH_WRK_SECONDS:-5}

export RGW_PORT=${BENCH_RGW_PORT:-37480}
export CEPH_MON_PORT=${BENCH_MON_PORT:-36789}
export CEPH_ROOT=${BENCH_CEPH_ROOT:-/tmp/s3b-bench-ceph}
export OS_PORT=${BENCH_OS_PORT:-39200}
export OS_ROOT=${BENCH_OS_ROOT:-/tmp/s3b-bench-os}
ES_DOWN_PORT=${BENCH_ES_DOWN_PORT:-39201}
ENDPOINT=http://127.0.0.1:$RGW_PORT
MANIFEST_BUCKET=bench-manifests

if [ "$QUICK" = 1 ]; then
	N_SMALL=200 N_MANY=2000 BIG_MB=64 N_BATCH_SMALL=200 N_BATCH_MANY=2000
	N_MIB=64
else
	N_SMALL=2000 N_MANY=20000 BIG_MB=1024 N_BATCH_SMALL=10000
	N_BATCH_MANY=20000 N_MIB=1024
fi

# ---- environment: only 127.0.0.1, nothing from the caller's AWS set-up -----

export AWS_ACCESS_KEY_ID=${S3_ACCESS_KEY:-AKIAIOSFODNN7EXAMPLE}
export AWS_SECRET_ACCESS_KEY=${S3_SECRET_KEY:-wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY}
export S3_ACCESS_KEY=$AWS_ACCESS_KEY_ID S3_SECRET_KEY=$AWS_SECRET_ACCESS_KEY
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=$ENDPOINT
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_EC2_METADATA_DISABLED=true
# rclone 1.60 fails before sending anything when AWS_CA_BUNDLE is set; the
# endpoint is plain http, so no client needs a CA.
unset AWS_CA_BUNDLE AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL_S3 \
    AWS_MAX_ATTEMPTS http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY \
    all_proxy
export NO_PROXY='127.0.0.1,localhost,.localhost'
# awscli: the radosgw here predates flexible checksums
export AWS_REQUEST_CHECKSUM_CALCULATION=when_required
export AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
# rclone, configured through the environment only (remote "bench")
export RCLONE_CONFIG=/dev/null
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Ceph
export RCLONE_CONFIG_BENCH_ENDPOINT=$ENDPOINT RCLONE_CONFIG_BENCH_REGION=us-east-1
export RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID
export RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY

T_START=$(date +%s)
say() { printf '%s\n' "$*"; }
note() { printf '# %s\n' "$*"; }
# what a tool printed, with the secret key masked
mask() { sed -e "s|$AWS_SECRET_ACCESS_KEY|<secret>|g"; }
now_ns() { date +%s%N; }
fdiv() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" \
    'BEGIN { if (b + 0 == 0) print "-"; else printf f "\n", a / b }'; }

# ---- tools ------------------------------------------------------------------

S3SYNC=$BIN/s3-sync
S3BATCH=$BIN/s3-batch
# the real awscli entry point, not pyenv's shim (a bash script that starts
# pyenv first: ~0.1 s more per call, and not what an operator runs)
AWS=$(pyenv which aws 2>/dev/null || command -v aws || true)
RCLONE=$(command -v rclone || true)
S3CMD=$(command -v s3cmd || true)
S5CMD=${S5CMD:-}
if [ -z "$S5CMD" ]; then
	for c in "$(go env GOPATH 2>/dev/null || /usr/local/go/bin/go env GOPATH 2>/dev/null)/bin/s5cmd" \
	    "$HOME/go/bin/s5cmd" "$(command -v s5cmd || true)"; do
		if [ -n "$c" ] && [ -x "$c" ]; then S5CMD=$c; break; fi
	done
fi
WRK=$(command -v wrk || true)
TIME=/usr/bin/time

have() {
	case $1 in
	s3-sync) [ -x "$S3SYNC" ] ;;
	s3-batch) [ -x "$S3BATCH" ] ;;
	aws | tar-pipe) [ -n "$AWS" ] ;;
	rclone) [ -n "$RCLONE" ] ;;
	s3cmd) [ -n "$S3CMD" ] ;;
	s5cmd) [ -n "$S5CMD" ] ;;
	wrk) [ -n "$WRK" ] ;;
	*) return 1 ;;
	esac
}

tool_selected() {
	[ "$TOOLSEL" = all ] && return 0
	local t
	for t in $TOOLSEL; do [ "$t" = "$1" ] && return 0; done
	return 1
}

# ---- servers --------------------------------------------------------------

OS_UP=0
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	"$CEPH_SH" stop >/dev/null 2>&1 || true
	if [ "$OS_UP" = 1 ]; then "$OS_SH" stop >/dev/null 2>&1 || true; fi
	[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# rgw_reset: a wiped, freshly started radosgw. Output in $WORK/ceph.log.
STORED_BYTES=0 STORED_OBJS=0 BUCKET_SEQ=0
rgw_reset() {
	if ! "$CEPH_SH" start >>"$WORK/ceph.log" 2>&1; then
		say "FATAL: radosgw did not start: see $WORK/ceph.log" \
		    "($CEPH_ROOT/log)" >&2
		tail -5 "$WORK/ceph.log" >&2
		exit 1
	fi
	STORED_BYTES=0 STORED_OBJS=0
}

# rgw_room BYTES OBJECTS: wipe the server first if a run storing this much
# would take it past 4 GiB or 250,000 objects since the last wipe
rgw_room() {
	if [ $((STORED_BYTES + $1)) -gt $((4 << 30)) ] ||
	    [ $((STORED_OBJS + $2)) -gt 250000 ]; then
		rgw_reset
	fi
	STORED_BYTES=$((STORED_BYTES + $1)) STORED_OBJS=$((STORED_OBJS + $2))
}

# mkbucket NAME: CreateBucket signed by curl (no 0.5 s awscli start-up)
mkbucket() {
	local code
	code=$(curl -s -o "$WORK/mkbucket.out" -w '%{http_code}' -X PUT \
	    --aws-sigv4 "aws:amz:us-east-1:s3" \
	    --config <(printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" \
	    "$AWS_SECRET_ACCESS_KEY") \
	    -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$ENDPOINT/$1")
	[ "$code" = 200 ] ||
	    { say "FATAL: cannot create bucket $1: HTTP $code" >&2; exit 1; }
}

# rgw_alive: the server answers (something else may have stopped it: it is
# then wiped and started again, and the run goes on)
rgw_alive() {
	curl -s -o /dev/null --max-time 5 "$ENDPOINT/" && return 0
	note "radosgw on $ENDPOINT was gone (stopped from outside?):" \
	    "wiping and starting it again"
	rgw_reset
}

# new_buckets: a new data bucket B and manifest bucket MB for the next run
new_buckets() {
	rgw_alive
	BUCKET_SEQ=$((BUCKET_SEQ + 1))
	B=$(printf 'bench-d%05d' "$BUCKET_SEQ")
	MB=$(printf 'bench-m%05d' "$BUCKET_SEQ")
	mkbucket "$B"
	mkbucket "$MB"
}

# rgw_count BUCKET: objects in BUCKET (radosgw's own bucket stats)
rgw_count() {
	radosgw-admin -c "$CEPH_ROOT/ceph.conf" bucket stats --bucket="$1" \
	    2>/dev/null | jq -r '.usage."rgw.main".num_objects // 0' 2>/dev/null ||
	    echo 0
}

es_clean() {
	local i
	for i in $(curl -s -m 10 "http://127.0.0.1:$OS_PORT/_cat/indices?h=index" |
	    grep -v '^\.'); do
		curl -s -m 30 -X DELETE "http://127.0.0.1:$OS_PORT/$i" >/dev/null
	done
}

es_docs() {
	curl -s -m 30 -X POST "http://127.0.0.1:$OS_PORT/_refresh" >/dev/null
	curl -s -m 30 "http://127.0.0.1:$OS_PORT/_cat/count?h=count" |
	    tr -d ' \r\n' || echo 0
}

os_start() {
	[ "$OS_UP" = 1 ] && return 0
	[ "$OS_UP" = failed ] && return 1
	local t0=$SECONDS
	if OS_JAVA_OPTS=${OS_JAVA_OPTS:--Xms256m -Xmx512m} "$OS_SH" start \
	    >"$WORK/opensearch.log" 2>&1; then
		OS_UP=1
		note "OpenSearch $(curl -s "http://127.0.0.1:$OS_PORT/" |
		    jq -r .version.number) up on 127.0.0.1:$OS_PORT" \
		    "in $((SECONDS - t0)) s (JVM -Xmx512m)"
		return 0
	fi
	OS_UP=failed
	say "opensearch: could not start: $(grep -v '^\s*$' "$WORK/opensearch.log" |
	    tail -1)"
	return 1
}

# ---- data -------------------------------------------------------------------

# master KIND COUNT SIZE: sets MASTER to a master tree under $WORK/master,
# made once
master() {
	local name=$1-$2-$3 t0
	if [ ! -d "$WORK/master/$name" ]; then
		t0=$(now_ns)
		python3 "$HERE/gen.py" "$WORK/master/$name.tmp" "$2" "$3" &&
		    mv "$WORK/master/$name.tmp" "$WORK/master/$name" || exit 1
		sync
		note "data $name: $2 files of $3 bytes made in" \
		    "$(fdiv $(( $(now_ns) - t0 )) 1000000000) s (not timed)"
	fi
	MASTER=$WORK/master/$name
}

# fresh_copy MASTER BUCKET: $WORK/run/BUCKET, a copy of MASTER on disk
fresh_copy() {
	rm -rf "$WORK/run" "$WORK/spool"
	mkdir -p "$WORK/run" "$WORK/spool"
	cp -a "$1" "$WORK/run/$2" || exit 1
	sync
}

# ---- measuring ----------------------------------------------------------------

RESULTS=$WORK/results.tsv   # case tool cfg conc es run wall_s rss_kb ok
SUMMARY=$WORK/summary.tsv   # case tool cfg conc es n bytes wall fps mbps rss runs ok
declare -A CMDLINE_SHOWN

# rss_of FILE...: sum of "Maximum resident set size" of the time -v reports
rss_of() {
	awk -F': ' '/Maximum resident set size/ { s += $2 } END { print s + 0 }' "$@"
}

first_error() {
	grep -v '^\s*$' "$1" 2>/dev/null | grep -iE 'error|fatal|fail|denied|not ' |
	    head -1 | mask | cut -c1-200 | grep . ||
	    { grep -v '^\s*$' "$1" 2>/dev/null | head -1 | mask | cut -c1-200; }
}

# command lines, printed once per case, tool and setting
show_cmd() {
	local key="$CASE/$1/$2/$3"
	[ -z "${CMDLINE_SHOWN[$key]:-}" ] || return 0
	CMDLINE_SHOWN[$key]=1
	say "cmd case=$CASE tool=$1 conc=$2${3:+ es=$3}: $4" |
	    sed -E 's/bench-([dm])[0-9]{5}/bench-\1NNNNN/g'

}

# Sets CMD (array), DISPLAY and, for our tools, the environment in ENVV.
# build_cmd TOOL CFG SRC BUCKET
build_cmd() {
	local tool=$1 cfg=$2 src=$3 b=$4
	CMD=() ENVV=() CONC_SHOWN=
	case $tool in
	s3-sync | s3-batch)
		local folder_var=S3_SYNC_BUCKETS_FOLDER bin=$S3SYNC
		if [ "$tool" = s3-batch ]; then
			folder_var=S3_BATCH_BUCKETS_FOLDER bin=$S3BATCH
		fi
		ENVV=("$folder_var=$WORK/run" "S3BATCH_SPOOL_DIR=$WORK/spool"
		    "S3BATCH_CONCURRENCY=$CONC" "S3BATCH_SETTLE_SECONDS=0"
		    "ELASTICSEARCH_LOGS_HOST=127.0.0.1"
		    "ELASTICSEARCH_LOGS_PORT=$ES_PORT_NOW"
		    "MANIFEST_FALLBACK_BUCKET=$MANIFEST_BUCKET")
		CMD=(env "${ENVV[@]}" "$bin")
		CONC_SHOWN=$CONC
		DISPLAY="${ENVV[*]} $bin"
		;;
	rclone)
		CMD=("$RCLONE" copy)
		if [ "$cfg" = ours ]; then
			CMD+=(--transfers "$CONC" --s3-upload-concurrency "$CONC")
			CONC_SHOWN=$CONC
		else
			CONC_SHOWN=4
		fi
		CMD+=("$src" "bench:$b")
		DISPLAY="RCLONE_CONFIG_BENCH_{TYPE=s3,PROVIDER=Ceph,ENDPOINT=$ENDPOINT,REGION,ACCESS_KEY_ID,SECRET_ACCESS_KEY} ${CMD[*]}"
		;;
	aws)
		local cf=$WORK/aws-config-$cfg
		if [ "$cfg" = ours ]; then
			if [ ! -s "$cf" ]; then
				AWS_CONFIG_FILE=$cf "$AWS" configure set \
				    default.s3.max_concurrent_requests "$CONC"
			fi
			CONC_SHOWN=$CONC
		else
			: >"$cf"
			CONC_SHOWN=10
		fi
		CMD=(env "AWS_CONFIG_FILE=$cf" "$AWS" s3 cp --recursive
		    --only-show-errors "$src" "s3://$b/")
		if [ "$cfg" = ours ]; then
			DISPLAY="AWS_CONFIG_FILE=$cf (aws configure set default.s3.max_concurrent_requests $CONC) ${CMD[*]:2}"
		else
			DISPLAY="AWS_CONFIG_FILE=$cf (empty) ${CMD[*]:2}"
		fi
		;;
	s3cmd)
		CMD=("$S3CMD" -c "$WORK/s3cfg" --no-progress put -r "$src/"
		    "s3://$b/")
		CONC_SHOWN=1
		DISPLAY="${CMD[*]}  ($WORK/s3cfg: host_base/host_bucket 127.0.0.1:$RGW_PORT, use_https False, the keys; s3cmd has no concurrency option: one file at a time)"
		;;
	s5cmd)
		CMD=("$S5CMD" --endpoint-url "$ENDPOINT")
		if [ "$cfg" = ours ]; then
			CMD+=(--numworkers "$CONC" cp --concurrency "$CONC")
			CONC_SHOWN=$CONC
		else
			CMD+=(cp)
			CONC_SHOWN=256
		fi
		CMD+=("$src/*" "s3://$b/")
		DISPLAY="${CMD[*]}"
		;;
	tar-pipe)
		CMD=()
		CONC_SHOWN=10
		DISPLAY="tar cf - -C $src . | AWS_CONFIG_FILE=$WORK/aws-config-default $AWS s3 cp - s3://$b/bench.tar"
		;;
	esac
}

# run_one TOOL CFG MASTER BYTES NFILES ES RUN: one timed run on fresh data
# into a new bucket; appends to RESULTS. Returns 0 if the run did the work.
run_one() {
	local tool=$1 cfg=$2 master_dir=$3 bytes=$4 n=$5 es=$6 run=$7
	local b src tf=$WORK/time.txt tf2=$WORK/time2.txt
	local out=$WORK/out.txt rc=0 t0 t1 wall rss ok=1 why="" cnt left docs
	LAST_RC=0 LAST_WHY=""
	rgw_room "$bytes" "$n"
	new_buckets
	b=$B src=$WORK/run/$B MANIFEST_BUCKET=$MB
	fresh_copy "$master_dir" "$b"
	[ "$es" != up ] || es_clean
	build_cmd "$tool" "$cfg" "$src" "$b"
	show_cmd "$tool" "$CONC_SHOWN" "$es" "$DISPLAY"
	rm -f "$tf" "$tf2"
	t0=$(now_ns)
	if [ "$tool" = tar-pipe ]; then
		# the two processes run at once: their peaks add up
		( set -o pipefail
		  "$TIME" -v -o "$tf" tar cf - -C "$src" . |
		  AWS_CONFIG_FILE=$WORK/aws-config-default "$TIME" -v -o "$tf2" \
		      "$AWS" s3 cp - "s3://$b/bench.tar" ) >"$out" 2>&1 || rc=$?
	else
		"$TIME" -v -o "$tf" "${CMD[@]}" >"$out" 2>&1 || rc=$?
	fi
	t1=$(now_ns)
	wall=$(fdiv $((t1 - t0)) 1000000000 %.3f)
	rss=$(rss_of "$tf" $( [ -f "$tf2" ] && echo "$tf2"))
	# did it do the work?
	cnt=$(rgw_count "$b")
	if [ "$rc" -ne 0 ]; then
		ok=0 why="exit $rc: $(first_error "$out")"
	fi
	case $tool in
	s3-sync | s3-batch)
		left=$(find "$src" -type f | wc -l)
		if [ "$ok" = 1 ] && [ "$left" -ne 0 ]; then
			ok=0 why="$left of $n files left"
		fi
		if [ "$ok" = 1 ] && [ "$tool" = s3-sync ] && [ "$cnt" -ne "$n" ]; then
			ok=0 why="$cnt objects for $n files"
		fi
		if [ "$ok" = 1 ] && [ "$tool" = s3-batch ] && [ "$cnt" -lt 1 ]; then
			ok=0 why="no archive in s3://$b"
		fi
		if [ "$ok" = 1 ] && [ "$es" = down ] &&
		    [ "$(rgw_count "$MANIFEST_BUCKET")" -lt 1 ]; then
			ok=0 why="no manifest in s3://$MANIFEST_BUCKET"
		fi
		if [ "$ok" = 1 ] && [ "$es" = up ]; then
			docs=$(es_docs)
			[ "${docs:-0}" -ge "$n" ] 2>/dev/null ||
			    ok=0 why="$docs of $n manifest documents in OpenSearch"
		fi
		;;
	tar-pipe)
		[ "$ok" = 0 ] || [ "$cnt" -eq 1 ] || ok=0 why="$cnt objects, not 1"
		;;
	*)
		[ "$ok" = 0 ] || [ "$cnt" -eq "$n" ] ||
		    ok=0 why="$cnt objects for $n files"
		;;
	esac
	# "-": no ES setting (a peer); tabs around an empty field would merge
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$CASE" "$tool" "$cfg" \
	    "$CONC_SHOWN" "${es:--}" "$run" "$wall" "$rss" "$ok" >>"$RESULTS"
	if [ "$ok" = 1 ]; then
		say "run case=$CASE tool=$tool conc=$CONC_SHOWN${es:+ es=$es} run=$run wall_s=$wall rss_kb=$rss objects=$cnt"
	else
		LAST_WHY=$why LAST_RC=$rc
		say "run case=$CASE tool=$tool conc=$CONC_SHOWN${es:+ es=$es} run=$run FAILED ($why)"
	fi
	cp "$out" "$WORK/last-$tool.out" 2>/dev/null
	[ "$ok" = 1 ]
}

# summarize CASE NFILES BYTES METRIC: median line per tool and setting, then
# the ratios of ours to each peer
summarize() {
	local c=$1 n=$2 bytes=$3 metric=$4
	awk -F'\t' -v c="$c" -v n="$n" -v bytes="$bytes" -v metric="$metric" '
	function median(s,   a, k, i, j, t) {
		k = split(s, a, " ")
		for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++)
			if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		if (k % 2) return a[(k + 1) / 2]
		return (a[k / 2] + a[k / 2 + 1]) / 2
	}
	$1 == c {
		key = $2 "\t" $3 "\t" $4 "\t" $5
		if (!(key in seen)) { seen[key] = 1; order[++m] = key }
		tried[key]++
		if ($9 == 1) {
			walls[key] = walls[key] " " $7; ok[key]++
			if ($8 + 0 > rss[key]) rss[key] = $8 + 0
		}
	}
	END {
		for (i = 1; i <= m; i++) {
			key = order[i]; split(key, f, "\t")
			if (!ok[key]) {
				printf "%s\t%s\t%s\t%s\t%s\t%d\t%d\t-\t-\t-\t-\t0/%d\n",
				    c, f[1], f[2], f[3], f[4], n, bytes, tried[key]
				continue
			}
			w = median(walls[key])
			printf "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%.3f\t%.1f\t%.1f\t%d\t%d/%d\n",
			    c, f[1], f[2], f[3], f[4], n, bytes, w, n / w,
			    bytes / 1e6 / w, rss[key], ok[key], tried[key]
		}
	}' "$RESULTS" >"$WORK/case.tsv"
	cat "$WORK/case.tsv" >>"$SUMMARY"
	local cc tool cfg conc es nn bb wall fps mbps rssk runs
	while IFS=$'\t' read -r cc tool cfg conc es nn bb wall fps mbps rssk runs; do
		[ "$es" != - ] || es=""
		if [ "$wall" = - ]; then
			say "case=$c tool=$tool conc=$conc${es:+ es=$es} status=failed runs=$runs"
		else
			say "case=$c tool=$tool conc=$conc${es:+ es=$es} wall_s=$wall files_per_s=$fps mb_per_s=$mbps rss_kb=$rssk runs=${runs%/*}"
		fi
	done <"$WORK/case.tsv"
	# ratios: ours (s3-sync or s3-batch, each ES setting) to every peer row
	awk -F'\t' -v metric="$metric" -v ceil="${CEILING_RPS:-}" '
	{ row[NR] = $0 }
	END {
		for (i = 1; i <= NR; i++) {
			split(row[i], o, "\t")
			if (o[2] != "s3-sync" && o[2] != "s3-batch") continue
			if (o[8] == "-") continue
			ov = (metric == "files_per_s") ? o[9] : o[10]
			for (j = 1; j <= NR; j++) {
				split(row[j], p, "\t")
				if (p[2] == "s3-sync" || p[2] == "s3-batch") continue
				if (p[8] == "-") continue
				pv = (metric == "files_per_s") ? p[9] : p[10]
				printf "ratio case=%s ours=%s%s peer=%s peer_conc=%s metric=%s ours/peer=%.2f rss_ours/peer=%.2f\n",
				    o[1], o[2], (o[5] != "-" ? " es=" o[5] : ""), p[2], p[4],
				    metric, ov / pv, (p[11] > 0 ? o[11] / p[11] : 0)
			}
			if (ceil != "" && metric == "files_per_s" && o[2] == "s3-sync")
				printf "ratio case=%s ours=%s%s peer=wrk-ceiling peer_conc=16 metric=files_per_s ours/peer=%.2f\n",
				    o[1], o[2], (o[5] != "-" ? " es=" o[5] : ""), ov / ceil
		}
	}' "$WORK/case.tsv"
}

# ---- cases --------------------------------------------------------------------

ALL_CASES="ceiling sync-small-esdown sync-many-esdown sync-big-esdown
	batch-small-esdown batch-many-esdown batch-big-esdown sync-small-esup
	sync-many-esup sync-big-esup batch-small-esup batch-many-esup
	batch-big-esup"

case_selected() {
	local tok
	[ "$SELECT" = all ] && return 0
	for tok in $SELECT; do
		# prefix or glob: "sync" takes every sync case, "batch-*-esup"
		# the three with OpenSearch up, "batch-small" both of its modes
		# shellcheck disable=SC2053
		[[ $1 == $tok* ]] && return 0
	done
	return 1
}

case_ceiling() {
	CASE=ceiling-put-4k
	local b out=$WORK/wrk.txt rps non2xx cnt reqs i vals=""
	if ! have wrk; then say "wrk: not installed (scripts/setup-bench.sh)"; return; fi
	say "cmd case=$CASE tool=wrk conc=16: $WRK -t1 -c16 -d${WRK_SECONDS}s -s $HERE/put4k.lua $ENDPOINT -- bench-dNNNNN   (bucket ACL public-read-write: $AWS s3api put-bucket-acl --bucket bench-dNNNNN --acl public-read-write)"
	rgw_reset
	for i in $(seq "$RUNS"); do
		rgw_room $((WRK_SECONDS * 2000 * 4096)) $((WRK_SECONDS * 2000))
		new_buckets
		b=$B
		"$AWS" s3api put-bucket-acl --bucket "$b" --acl public-read-write ||
		    { say "wrk: cannot make $b public-write"; return; }
		"$WRK" -t1 -c16 -d"${WRK_SECONDS}s" -s "$HERE/put4k.lua" \
		    "$ENDPOINT" -- "$b" >"$out" 2>&1
		rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
		reqs=$(awk '/requests in/ { print $1 }' "$out")
		non2xx=$(awk '/Non-2xx/ { print $NF }' "$out")
		cnt=$(rgw_count "$b")
		if [ -z "$rps" ] || [ -n "$non2xx" ] || [ "$cnt" -lt "${reqs:-1}" ]; then
			say "run case=$CASE tool=wrk run=$i FAILED (rps=${rps:-?} non-2xx=${non2xx:-0} objects=$cnt of ${reqs:-?} requests: $(head -3 "$out" | tr '\n' ' '))"
			continue
		fi
		say "run case=$CASE tool=wrk conc=16 run=$i req_per_s=$rps requests=$reqs objects=$cnt"
		vals="$vals $rps"
	done
	[ -n "$vals" ] || return
	CEILING_RPS=$(printf '%s\n' $vals | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
	say "case=$CASE tool=wrk conc=16 req_per_s=$CEILING_RPS files_per_s=$CEILING_RPS mb_per_s=$(fdiv "$(awk -v r="$CEILING_RPS" 'BEGIN { print r * 4096 }')" 1000000 %.1f) runs=$(echo $vals | wc -w)"
	printf 'ceiling-put-4k\twrk\tdefault\t16\t-\t0\t0\t-\t%s\t-\t-\t%s\n' \
	    "$CEILING_RPS" "$(echo $vals | wc -w)" >>"$SUMMARY"
}

# case_upload CASE KIND COUNT SIZE METRIC ES_MODES TOOLS...
# TOOLS: "tool:cfg" words (cfg default or ours)
case_upload() {
	local c=$1 kind=$2 count=$3 size=$4 metric=$5 esmodes=$6
	shift 6
	local m run t tool cfg es key bytes
	CASE=$c
	master "$kind" "$count" "$size"
	m=$MASTER
	bytes=$((count * size))
	say ""
	say "== case $c: $count files of $size bytes ($(fdiv "$bytes" 1000000 %.1f) MB)," \
	    "$RUNS run(s) each; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	declare -A dead=()
	rgw_reset
	for run in $(seq "$RUNS"); do
		for t in "$@"; do
			tool=${t%%:*} cfg=${t#*:}
			tool_selected "$tool" || continue
			if ! have "$tool"; then
				[ "$run" != 1 ] || say "$tool: not installed (scripts/setup-bench.sh)"
				continue
			fi
			for es in $esmodes; do
				case $tool in s3-sync | s3-batch) ;; *) [ "$es" = "${esmodes%% *}" ] || continue; es="" ;; esac
				key="$tool/$cfg/$es"
				[ -z "${dead[$key]:-}" ] || continue
				if [ "$es" = up ]; then
					os_start || continue
					ES_PORT_NOW=$OS_PORT
				else
					ES_PORT_NOW=$ES_DOWN_PORT
				fi
				if ! run_one "$tool" "$cfg" "$m" "$bytes" "$count" "$es" "$run" &&
				    [ "$tool" = s3-batch ] && [ "$LAST_RC" -ne 0 ]; then
					say "s3-batch: not runnable yet ($LAST_WHY)"
					dead[$key]=1
				fi
			done
		done
	done
	summarize "$c" "$count" "$bytes" "$metric"
	rm -rf "$WORK/run" "$WORK/spool"
}

SYNC_TOOLS="s3-sync:ours rclone:default rclone:ours aws:default aws:ours
	s3cmd:default s5cmd:default s5cmd:ours"

# ---- main -------------------------------------------------------------------

mkdir -p "$WORK" || exit 1
rm -rf "$WORK/run" "$WORK/spool" "$RESULTS" "$SUMMARY"
: >"$RESULTS"; : >"$SUMMARY"; : >"$WORK/ceph.log"
: >"$WORK/aws-config-default"
umask 077
printf '[default]\naccess_key = %s\nsecret_key = %s\nhost_base = 127.0.0.1:%s\nhost_bucket = 127.0.0.1:%s\nuse_https = False\nbucket_location = us-east-1\n' \
    "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$RGW_PORT" "$RGW_PORT" \
    >"$WORK/s3cfg"
umask 022

if port_open "$ES_DOWN_PORT"; then
	say "FATAL: port $ES_DOWN_PORT answers; set BENCH_ES_DOWN_PORT to a closed one" >&2
	exit 1
fi
for t in s3-sync s3-batch; do
	have "$t" || say "$t: $BIN/$t not built (make all)"
done

say "# s3-batch bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
    "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);" \
    "client and servers share this machine"
note "mode: $([ "$QUICK" = 1 ] && echo "quick (BENCH_QUICK=1)" || echo full)," \
    "$RUNS run(s) per tool and case, medians; S3BATCH_CONCURRENCY=$CONC;" \
    "cases: $SELECT; tools: $TOOLSEL"
note "data on $(df -T "$WORK" | awk 'NR == 2 { print $2 " (" $7 ")" }'):" \
    "$WORK; every run gets a fresh copy, synced before the clock starts"
note "server: single-node Ceph radosgw $(radosgw --version 2>/dev/null |
    awk '{ print $3 }') (bluestore) on $ENDPOINT, wiped and restarted" \
    "at each case and every 4 GiB / 250,000 objects; load average now" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
note "ES down = ELASTICSEARCH_LOGS_PORT=$ES_DOWN_PORT (closed), manifests to" \
    "the fallback bucket (one per run, bench-mNNNNN); ES up = OpenSearch on" \
    "127.0.0.1:$OS_PORT"
note "s3-sync, s3-batch and aws take AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY," \
    "AWS_REGION=us-east-1 and AWS_ENDPOINT_URL=$ENDPOINT from the environment;" \
    "every run writes to a new bucket bench-dNNNNN"
note "versions:"
note "  s3-sync  $("$S3SYNC" --version 2>&1 | head -1) ($S3SYNC)"
note "  s3-batch $("$S3BATCH" --version 2>&1 | head -1) ($S3BATCH)"
have rclone && note "  rclone   $("$RCLONE" version 2>&1 | head -1) ($RCLONE)"
have aws && note "  aws      $("$AWS" --version 2>&1 | head -1) ($AWS)"
have s3cmd && note "  s3cmd    $("$S3CMD" --version 2>&1 | head -1) ($S3CMD)"
have s5cmd && note "  s5cmd    $("$S5CMD" version 2>&1 | head -1) ($S5CMD)"
have wrk && note "  wrk      $("$WRK" -v 2>&1 | head -1 | cut -d' ' -f1-2) ($WRK)"
note "  tar      $(tar --version | head -1); time: $(dpkg-query -W -f='GNU time ${Version}' time 2>/dev/null)"
note "rss_kb: peak RSS (/usr/bin/time -v, Maximum resident set size), the" \
    "highest of the runs; for the tar pipe the sum of tar's and aws's"
note "MB = 10^6 bytes; wall_s = median; files_per_s and mb_per_s from it"

# the ceiling of an earlier run can be given when this one skips that case
CEILING_RPS=${BENCH_CEILING_RPS:-}
case_selected ceiling && case_ceiling
SYNC_ES_DOWN="" SYNC_ES_UP=""
for e in $SYNC_ES; do
	[ "$e" = down ] && SYNC_ES_DOWN=down
	[ "$e" = up ] && SYNC_ES_UP=up
done
# first every case that needs no OpenSearch, then the ones that do: no JVM
# in the background of the rest
ES_FIRST=${SYNC_ES_DOWN:-down}
# shellcheck disable=SC2086
case_selected sync-small-esdown && case_upload sync-4k-$N_SMALL small $N_SMALL 4096 files_per_s "$ES_FIRST" $SYNC_TOOLS
case_selected sync-many-esdown && case_upload sync-4k-$N_MANY small $N_MANY 4096 files_per_s "$ES_FIRST" $SYNC_TOOLS
case_selected sync-big-esdown && case_upload sync-1file-${BIG_MB}m big 1 $((BIG_MB * 1048576)) mb_per_s "$ES_FIRST" $SYNC_TOOLS
case_selected batch-small-esdown && case_upload batch-4k-$N_BATCH_SMALL-esdown small $N_BATCH_SMALL 4096 files_per_s down s3-batch:ours tar-pipe:default rclone:ours
case_selected batch-many-esdown && case_upload batch-4k-$N_BATCH_MANY-esdown small $N_BATCH_MANY 4096 files_per_s down s3-batch:ours tar-pipe:default
case_selected batch-big-esdown && case_upload batch-1m-$N_MIB-esdown mib $N_MIB 1048576 mb_per_s down s3-batch:ours tar-pipe:default
if [ -n "$SYNC_ES_UP" ]; then
	case_selected sync-small-esup && case_upload sync-4k-$N_SMALL-esup small $N_SMALL 4096 files_per_s up s3-sync:ours
	case_selected sync-many-esup && case_upload sync-4k-$N_MANY-esup small $N_MANY 4096 files_per_s up s3-sync:ours
	case_selected sync-big-esup && case_upload sync-1file-${BIG_MB}m-esup big 1 $((BIG_MB * 1048576)) mb_per_s up s3-sync:ours
fi
case_selected batch-small-esup && case_upload batch-4k-$N_BATCH_SMALL-esup small $N_BATCH_SMALL 4096 files_per_s up s3-batch:ours tar-pipe:default
case_selected batch-many-esup && case_upload batch-4k-$N_BATCH_MANY-esup small $N_BATCH_MANY 4096 files_per_s up s3-batch:ours tar-pipe:default
case_selected batch-big-esup && case_upload batch-1m-$N_MIB-esup mib $N_MIB 1048576 mb_per_s up s3-batch:ours tar-pipe:default

# ---- the human table ------------------------------------------------------------

say ""
say "== summary ($(($(date +%s) - T_START)) s in all; load average now $(cut -d' ' -f1-3 /proc/loadavg))"
awk -F'\t' '
BEGIN { printf "%-26s %-9s %5s %-4s %9s %9s %8s %9s %6s\n", "case", "tool", "conc", "es", "wall_s", "files/s", "MB/s", "RSS_MiB", "runs" }
{
	if ($2 == "wrk") {
		printf "%-26s %-9s %5s %-4s %9s %9s %8s %9s %6s\n", $1, $2, $4, "-", "-", $9, sprintf("%.1f", $9 * 4096 / 1e6), "-", $12
		next
	}
	printf "%-26s %-9s %5s %-4s %9s %9s %8s %9s %6s\n", $1, $2, $4, $5, $8, $9, $10, ($11 == "-" ? "-" : sprintf("%.1f", $11 / 1024)), $12
}' "$SUMMARY"
say "total_s=$(($(date +%s) - T_START))"
