#!/usr/bin/env bash
# Operating the tools, against the real radosgw and a real rsyslogd: exit
# statuses, two overlapping runs, logs over UDP and TCP, the progress line
# on a terminal, --dry-run (touches nothing, connects to nothing), --status,
# secrets that appear nowhere, and SIGTERM in the middle of a run.
# ElasticSearch is a local listener that refuses every request (401), so
# manifests go to the fallback bucket, where the tests read them.
. "$S3B_TOP/tests/lib/common.sh"
. "$S3B_TOP/tests/lib/rsyslog.sh"
# Copies of the binaries under test: a make running beside the tests must
# not swap them in the middle of a scenario.
BIN=$S3B_TMP/ops-bin
mkdir -p "$BIN"
for _ in 1 2 3; do
	cp "$S3B_BUILD/s3-sync" "$S3B_BUILD/s3-batch" "$BIN/" &&
	    "$BIN/s3-sync" --version >/dev/null && "$BIN/s3-batch" --version >/dev/null &&
	    break
	sleep 2
done
SYNC=$BIN/s3-sync
BATCH=$BIN/s3-batch
FB=s3b-ops-fallback
BG=

cleanup() {
	local p
	for p in $BG; do kill -9 "$p" 2>/dev/null; done
	stop_proxy
	stop_rsyslog
	[ -n "${L_PID:-}" ] && kill "$L_PID" 2>/dev/null
}
trap cleanup EXIT

# --- helpers ---------------------------------------------------------------

# A listener on 127.0.0.1 that counts: TCP ports named by the arguments and
# one UDP port. Each TCP connection and UDP datagram adds a JSON line to
# $L_LOG with what came in; HTTP requests get a 401 JSON error. Sets L_PID
# and L_<NAME>_PORT (L_UDP_PORT for UDP).
start_listener() {
	local dir=$S3B_TMP/listener line kv
	mkdir -p "$dir"
	L_LOG=$dir/log
	: > "$L_LOG"
	cat > "$dir/listen.py" <<'PY'
import json, socket, sys, threading
names, log = sys.argv[2:], open(sys.argv[1], "a", buffering=1)
lock = threading.Lock()
def note(kind, name, data):
    with lock:
        log.write(json.dumps({"kind": kind, "name": name,
                              "data": data.decode("latin-1")}) + "\n")
def talk(name, c):
    c.settimeout(5)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            b = c.recv(65536)
            if not b:
                break
            data += b
        body = b'{"error":{"type":"security_exception","reason":"listener"},"status":401}'
        c.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    except OSError:
        pass
    note("tcp", name, data)
    c.close()
def serve(name, srv):
    while True:
        c, _ = srv.accept()
        threading.Thread(target=talk, args=(name, c), daemon=True).start()
def udp(srv):
    while True:
        data, _ = srv.recvfrom(65536)
        note("udp", "udp", data)
ports = []
for n in names:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    ports.append("%s=%d" % (n, s.getsockname()[1]))
    threading.Thread(target=serve, args=(n, s), daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
ports.append("UDP=%d" % u.getsockname()[1])
threading.Thread(target=udp, args=(u,), daemon=True).start()
print(" ".join(ports), flush=True)
threading.Event().wait()
PY
	python3 "$dir/listen.py" "$L_LOG" "$@" > "$dir/ports" &
	L_PID=$!
	for _ in $(seq 1 50); do [ -s "$dir/ports" ] && break; sleep 0.1; done
	read -r line < "$dir/ports" || return 1
	for kv in $line; do eval "L_${kv%%=*}_PORT=${kv#*=}"; done
}
listener_count() { wc -l < "$L_LOG"; }

# The tools' environment for this file: ElasticSearch is the listener,
# manifests go to $FB under the scenario's prefix.
ops_env() {	# scenario
	tool_env
	export ELASTICSEARCH_LOGS_PORT=$L_ES_PORT
	export MANIFEST_FALLBACK_BUCKET=$FB/$1 S3BATCH_SETTLE_SECONDS=0
	unset RSYSLOG_HOST RSYSLOG_PORT RSYSLOG_PROTOCOL
}

# Fill bucket folder $1 with $2 files under in/ (and a mirror).
fill() {
	local b=$1 i
	mkdir -p "$W/root/$b/in/sub" "$W/mirror/$b"
	for i in $(seq 1 "$2"); do
		head -c $((RANDOM % 5000 + 1)) /dev/urandom > "$W/root/$b/in/sub/f$i.dat"
	done
	cp -a "$W/root/$b/." "$W/mirror/$b/"
}

# Every manifest entry in the fallback objects under prefix $1, as
# bucket/path, one a line, sorted (duplicates kept, so they show).
fallback_paths() {
	local k
	aws s3api list-objects-v2 --bucket "$FB" --prefix "$1/" --output json |
	    python3 -c 'import json,sys
d=sys.stdin.read().strip()
for o in (json.loads(d).get("Contents") or [] if d else []): print(o["Key"])' |
	while IFS= read -r k; do
		aws s3 cp "s3://$FB/$k" - 2>/dev/null; echo
	done | python3 -c 'import json,sys
for line in sys.stdin:
    if line.strip():
        for e in json.loads(line)["entries"]:
            print(e["aws"]["s3"]["bucket"]["name"] + "/" + e["file"]["path"])' |
	    LC_ALL=C sort
}

# Every object in bucket $1 has the bytes of its copy in the mirror.
present_objects_match() {
	local b=$1 k bad=0
	while IFS= read -r k; do
		[ -n "$k" ] || continue
		if ! s3_get "$b" "$k" "$S3B_TMP/get.$$" ||
		    ! cmp -s "$S3B_TMP/get.$$" "$W/mirror/$b/$k"; then
			echo "differs: $k"; bad=1
		fi
	done < <(s3_keys "$b")
	rm -f "$S3B_TMP/get.$$"
	return $bad
}

# Every file of the mirror as bucket/key.
mirror_paths() { local_files "$W/mirror"; }

# Names, types, sizes, times, inodes and modes of everything under $1.
snapshot() {
	(cd "$1" && find . -printf '%p %y %s %T@ %C@ %i %m\n' | LC_ALL=C sort)
}

# Until --status of tool $1 shows pid $2 holding the lock (10 s).
wait_lock() {
	local i
	for i in $(seq 1 100); do
		"$BIN/$1" --status 2>/dev/null |
		    grep -q "a run holds the lock: pid $2\$" && return 0
		sleep 0.1
	done
	return 1
}

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

start_listener ES S3 IMDS ECS STS SYSTCP || { echo "listener did not start"; exit 1; }
s3_rb "$FB"; s3_mb "$FB"

# --- exit statuses, the same for both tools ---------------------------------
new_work; ops_env status
echo x > "$W/not-a-dir"
for t in s3-sync s3-batch; do
	tool=$BIN/$t
	"$tool" --help >"$W/out" 2>&1
	check_eq "$t --help: exit 0" "$?" 0
	check "$t --help: usage on stdout" grep -q "^usage: $t" "$W/out"
	"$tool" --version >"$W/out" 2>&1
	check_eq "$t --version: exit 0" "$?" 0
	check "$t --version: name and version" grep -qE "^$t [0-9]+\.[0-9]+" "$W/out"
	"$tool" --bogus 2>/dev/null; check_eq "$t --bogus: exit 64" "$?" 64
	"$tool" extra 2>/dev/null; check_eq "$t with an argument: exit 64" "$?" 64
	"$tool" --dry-run --status 2>/dev/null
	check_eq "$t --dry-run --status: exit 64" "$?" 64
	S3BATCH_CONCURRENCY=lots "$tool" 2>"$W/err"
	check_eq "$t bad setting: exit 78" "$?" 78
	check "$t bad setting: one line naming it" \
	    test "$(grep -c S3BATCH_CONCURRENCY "$W/err")" = 1 -a "$(wc -l < "$W/err")" = 1
	S3BATCH_SPOOL_DIR=$W/not-a-dir "$tool" 2>"$W/err"
	check_eq "$t spool that cannot be made: exit 74" "$?" 74
	"$tool" 2>"$W/err"
	check_eq "$t nothing to do: exit 0" "$?" 0
	check_eq "$t nothing to do: silent under cron" "$(cat "$W/err")" ""
	flock -o "$W/spool/$t/lock" sleep 3 & holder=$!
	sleep 0.3
	"$tool" 2>"$W/err"; rc=$?
	kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
	check_eq "$t lock held: exit 75" "$rc" 75
	check_eq "$t lock held: no cron mail for it" "$(cat "$W/err")" ""
done

# --- overlap: a run held mid-upload, a second one, SIGKILL, the next ------
new_work; ops_env overlap
b=s3b-ops-overlap; s3_rb $b; s3_mb $b
fill $b 6
start_proxy 3
set_faults '{"rules":[{"match":{"method":"PUT"},"action":"stall","seconds":60,"then":"close"}]}'
AWS_ENDPOINT_URL=$PROXY_URL "$SYNC" 2>"$W/err1" &
first=$!; BG="$BG $first"
check "overlap: --status shows the first run holding the lock" wait_lock s3-sync $first
sleep 1	# its PUTs are now held by the proxy
t0=$(date +%s%N)
"$SYNC" 2>"$W/err2"; rc=$?
ms=$(ms_since "$t0")
check_eq "overlap: the second run exits 75" "$rc" 75
check "overlap: ... within one second (${ms} ms)" test "$ms" -lt 1000
check_eq "overlap: nothing uploaded" "$(s3_keys $b)" ""
check_eq "overlap: every file still in place" "$(local_files "$W/root")" "$(mirror_paths)"
kill -KILL $first; wait $first 2>/dev/null
stop_proxy
t0=$(date +%s%N)
"$SYNC" 2>"$W/err3"; rc=$?
ms=$(ms_since "$t0"); cat "$W/err3"
check_eq "overlap: after SIGKILL of the first, the next run works" "$rc" 0
check "overlap: ... at once (${ms} ms)" test "$ms" -lt 10000
check_eq "overlap: every file in S3" "$(s3_keys $b | sed "s|^|$b/|")" "$(mirror_paths)"
check "overlap: with its bytes" check_objects_match $b "$W/mirror/$b"
check_eq "overlap: nothing left locally" "$(local_files "$W/root")" ""
check_eq "overlap: one manifest entry per file" "$(fallback_paths overlap)" "$(mirror_paths)"
check_eq "overlap: the spool is empty" \
    "$(ls -A "$W/spool/s3-sync/batches" "$W/spool/s3-sync/mpu" | grep -v ':$' | grep -c .)" 0
s3_rb $b

# --- rsyslog: a real rsyslogd over UDP and TCP ------------------------------
start_rsyslog "$S3B_TMP/rsyslog" || not_ok "rsyslogd starts"
host=$(hostname)
new_work; ops_env syslog
b=s3b-ops-syslog; s3_rb $b; s3_mb $b
fill $b 3
mkdir -p "$W/root/Not_A_Bucket"; echo x > "$W/root/Not_A_Bucket/f"
RSYSLOG_HOST=127.0.0.1 RSYSLOG_PORT=$RSYSLOG_UDP_PORT "$SYNC" 2>"$W/err" &
pid=$!; wait $pid; rc=$?; cat "$W/err"
check_eq "udp: exit 0" "$rc" 0
check "udp: the summary arrives, facility user, severity notice" wait_received 1 \
    "^imudp user.notice v1 [0-9T:.+-]*Z* $host s3-sync $pid - 3 files, [0-9]* bytes, 3 objects, .*exit 0\$"
check "udp: RFC 5424 timestamp with fractions" grep -qE \
    "^imudp user.notice v1 20[0-9-]{8}T[0-9:]{8}\.[0-9]{6}" "$RSYSLOG_OUT"
check "udp: the warning arrives as a warning" \
    grep -q "^imudp user.warning .* s3-sync $pid - .*Not_A_Bucket" "$RSYSLOG_OUT"
check "udp: under cron stderr has the warning" grep -q "warning: .*Not_A_Bucket" "$W/err"
check "udp: ... and not the summary" bash -c "! grep -q 'files, ' '$W/err'"
check "udp: info lines stay out without -v" bash -c "! grep -q 'imudp user.info' '$RSYSLOG_OUT'"
rm -rf "$W/root/Not_A_Bucket"

fill $b 3
RSYSLOG_HOST=127.0.0.1 RSYSLOG_PORT=$RSYSLOG_TCP_PORT RSYSLOG_PROTOCOL=tcp \
    "$SYNC" -v 2>"$W/err" &
pid=$!; wait $pid; rc=$?
check_eq "tcp: exit 0" "$rc" 0
check "tcp: the summary arrives" wait_received 1 \
    "^imtcp user.notice v1 .* $host s3-sync $pid - 3 files, .*exit 0\$"
for i in 1 2 3; do
	check "tcp -v: the line of file $i arrives as info" grep -q \
	    "^imtcp user.info .* s3-sync $pid - '$b/in/sub/f$i.dat' -> s3://$b/in/sub/f$i.dat" \
	    "$RSYSLOG_OUT"
done
check "tcp -v: under cron -v puts the summary on stderr too" grep -q "3 files, " "$W/err"

fill $b 2
RSYSLOG_HOST=127.0.0.1 RSYSLOG_PORT=$RSYSLOG_TCP_PORT RSYSLOG_PROTOCOL=tcp \
    "$BATCH" -vvv 2>"$W/err" &
pid=$!; wait $pid; rc=$?
check_eq "s3-batch tcp -vvv: exit 0" "$rc" 0
check "s3-batch tcp: the summary arrives, with archives" wait_received 1 \
    "^imtcp user.notice v1 .* s3-batch $pid - 2 files, .* 1 archives, .*exit 0\$"
check "s3-batch tcp -vvv: debug lines arrive as debug" \
    grep -q "^imtcp user.debug .* s3-batch $pid - " "$RSYSLOG_OUT"

fill $b 2
RSYSLOG_HOST=127.0.0.1 RSYSLOG_PORT=$RSYSLOG_UDP_PORT "$BATCH" 2>"$W/err" &
pid=$!; wait $pid; rc=$?
check_eq "s3-batch udp: exit 0" "$rc" 0
check "s3-batch udp: the summary arrives" wait_received 1 \
    "^imudp user.notice v1 .* s3-batch $pid - 2 files, .*exit 0\$"
check "s3-batch udp: no summary on stderr under cron" bash -c "! grep -q 'files, ' '$W/err'"

# rsyslog gone: the run goes on, one warning, no long wait.
tcp_port=$RSYSLOG_TCP_PORT
stop_rsyslog
fill $b 2
t0=$(date +%s%N)
RSYSLOG_HOST=127.0.0.1 RSYSLOG_PORT=$tcp_port RSYSLOG_PROTOCOL=tcp "$SYNC" -v 2>"$W/err"
rc=$?; ms=$(ms_since "$t0"); cat "$W/err"
check_eq "rsyslog down: the run still succeeds" "$rc" 0
check "rsyslog down: no long wait (${ms} ms)" test "$ms" -lt 5000
check_eq "rsyslog down: said once on stderr" "$(grep -c "rsyslog tcp://127.0.0.1:$tcp_port" "$W/err")" 1
check_eq "rsyslog down: the files went anyway" "$(local_files "$W/root")" ""
s3_rb $b

# --- on a terminal: a progress line, then the summary -----------------------
new_work; ops_env tty
b=s3b-ops-tty; s3_rb $b; s3_mb $b
fill $b 6
start_proxy 5
set_faults '{"rules":[{"match":{"method":"PUT"},"action":"stall","seconds":0.4}]}'
AWS_ENDPOINT_URL=$PROXY_URL S3BATCH_CONCURRENCY=1 \
    script -qec "$SYNC" /dev/null > "$W/tty" 2>&1
rc=$?
stop_proxy
cat -A "$W/tty" | head -c 2000; echo
check_eq "tty: exit 0" "$rc" 0
check "tty: a progress line redrawn in place" \
    grep -q $'\r\e\\[Ks3-sync: [0-9]* objects, .* uploaded, .*/s; [0-9]* files done; [0-9]* s' "$W/tty"
check "tty: the summary line" grep -q "s3-sync: 6 files, .*exit 0" "$W/tty"
fill $b 2
script -qec "$SYNC -q" /dev/null > "$W/tty" 2>&1
check "tty -q: no progress line" bash -c "! grep -q ' uploaded, ' '$W/tty'"
check "tty -q: no summary" bash -c "! grep -q 'files, ' '$W/tty'"
s3_rb $b

# --- --dry-run: lists, touches nothing, connects to nothing -----------------
new_work; ops_env dry
b=s3b-ops-dry; s3_rb $b; s3_mb $b
mkdir -p "$W/root/$b/a/b"
echo top > "$W/root/$b/top.txt"
echo one > "$W/root/$b/a/1.txt"
head -c 3145728 /dev/urandom > "$W/root/$b/a/b/2.bin"
echo partial > "$W/root/$b/a/upload.filepart"
echo held > "$W/root/$b/a/held.txt"
bash -c "exec 3<'$W/root/$b/a/held.txt'; exec sleep 60" & holder=$!; BG="$BG $holder"
sleep 0.3
rm -rf "$W/spool"
# every endpoint a run could use points at the listener
dry_env=(AWS_ENDPOINT_URL=http://127.0.0.1:$L_S3_PORT
    AWS_ENDPOINT_URL_STS=http://127.0.0.1:$L_STS_PORT
    AWS_EC2_METADATA_DISABLED=false
    AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:$L_IMDS_PORT
    AWS_CONTAINER_CREDENTIALS_FULL_URI=http://127.0.0.1:$L_ECS_PORT/creds
    RSYSLOG_HOST=127.0.0.1 RSYSLOG_PORT=$L_UDP_PORT)
before=$(snapshot "$W/root"); n0=$(listener_count)
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "${dry_env[@]}" \
    "$SYNC" --dry-run -vvv >"$W/out" 2>"$W/err"
rc=$?; cat "$W/out" "$W/err"
check_eq "s3-sync --dry-run: exit 0" "$rc" 0
check_eq "s3-sync --dry-run: lists what a run would take" "$(grep -v ' would be taken' "$W/out" | LC_ALL=C sort)" \
    "$(printf '%s\n' "$b/a/1.txt 4" "$b/a/b/2.bin 3145728" "$b/top.txt 4" | LC_ALL=C sort)"
check "s3-sync --dry-run: totals" grep -q "^3 files, 3.0 MiB would be taken; passed over: 1 ignored, 1 open" "$W/out"
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "${dry_env[@]}" \
    RSYSLOG_PORT=$L_SYSTCP_PORT RSYSLOG_PROTOCOL=tcp \
    "$BATCH" --dry-run -vvv >"$W/out" 2>"$W/err"
rc=$?; cat "$W/out" "$W/err"
check_eq "s3-batch --dry-run: exit 0" "$rc" 0
check "s3-batch --dry-run: files with their archive" grep -qx \
    "$b/a/1.txt 4 -> s3://$b/a/<archive [0-9]*, [0-9]* bytes>.tar" "$W/out"
check "s3-batch --dry-run: one archive per folder" \
    test "$(grep -o ' -> s3://[^<]*<archive [0-9]*' "$W/out" | sort -u | wc -l)" = 3
check "s3-batch --dry-run: totals" grep -q "^3 files, .* in 3 archives would be taken" "$W/out"
sleep 0.5	# a datagram or connection would be in the log by now
check_eq "--dry-run: no connection to any endpoint (S3, ES, STS, IMDS, ECS, rsyslog)" \
    "$(listener_count)" "$n0"
check_eq "--dry-run: the tree is unchanged" "$(snapshot "$W/root")" "$before"
check "--dry-run: no spool made" test ! -e "$W/spool"
check_eq "--dry-run: the bucket is unchanged" "$(s3_keys $b)" ""
check_eq "--dry-run: no manifest written" "$(fallback_paths dry)" ""
kill $holder 2>/dev/null; wait $holder 2>/dev/null
s3_rb $b

# --- --status -----------------------------------------------------------------
new_work; ops_env status2
rm -rf "$W/spool"
"$SYNC" --status >"$W/out" 2>"$W/err"; rc=$?; cat "$W/out" "$W/err"
check_eq "--status, no spool: exit 0" "$rc" 0
check "--status, no spool: says so for both tools" \
    test "$(grep -c 'no spool yet' "$W/out")" = 2
check "--status, no spool: creates none" test ! -e "$W/spool"
"$SYNC" 2>/dev/null; "$BATCH" 2>/dev/null	# empty runs: a spool, a success
"$SYNC" --status >"$W/out"; rc=$?; cat "$W/out"
check_eq "--status, empty spool: exit 0" "$rc" 0
check "--status, empty spool: nothing waits" test "$(grep -c '  nothing waits' "$W/out")" = 2
check "--status, empty spool: the last success" \
    grep -qE "last successful run: $(date -u +%Y-%m-%d)T[0-9:]{8}Z \([0-9]+ s ago\)" "$W/out"
d=$W/spool/s3-batch
id=0b6f8c1e-5d2a-4c3b-9e7f-1a2b3c4d5e6f
mkdir -p "$d/batches/$id" "$d/work.AbC123/x"
head -c 10240 /dev/zero > "$d/batches/$id/archive.tar"
echo '{"entries":[]}' > "$d/batches/$id/manifest.json"
printf 'fake-bucket\nsome/key.bin\nupload-1\n' > "$d/mpu/feedface"
touch -d '-2 hours' "$d/batches/$id/archive.tar" "$d/batches/$id/manifest.json"
before=$(snapshot "$W/spool")
"$BATCH" --status >"$W/out" 2>"$W/err"; rc=$?; cat "$W/out" "$W/err"
check_eq "--status, work waiting: exit 0" "$rc" 0
check "--status: the batch, its archive and manifest" grep -q \
    "waiting: 1 sealed batch: 1 archive (10.0 KiB), 1 manifest (15 B); 1 multipart upload to abort; 1 unsealed staging directory" "$W/out"
check "--status: the oldest's age" grep -q "oldest: 2 h 0 min old" "$W/out"
check "--status: the batch by name" grep -q "batch $id: archive 10.0 KiB, manifest 15 B, 2 h 0 min old" "$W/out"
check "--status: the multipart upload's object" grep -q "multipart upload feedface: s3://fake-bucket/some/key.bin" "$W/out"
check "--status: the staging directory" grep -q "staging work.AbC123: unsealed" "$W/out"
check "--status: s3-sync's spool too" grep -q "^s3-sync: spool '$W/spool/s3-sync'" "$W/out"
check_eq "--status: the spool is unchanged" "$(snapshot "$W/spool")" "$before"
rm -rf "$d"

# --- secrets: nowhere, at maximum verbosity ------------------------------------
start_rsyslog "$S3B_TMP/rsyslog2" || not_ok "rsyslogd starts again"
TOKEN=FQoGZXIvYXdzEXAMPLEs3bSessionT0kenValue0123456789
ESUSER=s3bes ESPW=s3bEsPassw0rdValue0123456789
APIKEY=s3bApiKeyValue0123456789abcdef
GOOD=$AWS_SECRET_ACCESS_KEY
WRONG=s3bWrongSecretKey0123456789abcdefEXAMPLE
BASIC=$(printf '%s:%s' "$ESUSER" "$ESPW" | base64 -w0)
SECRETS=("$GOOD" "$WRONG" "$TOKEN" "$ESPW" "$APIKEY" "$BASIC")

# 0 when no secret occurs in any of the files (or directories) given.
no_secret_in() {
	local s f bad=0
	for s in "${SECRETS[@]}"; do
		for f in "$@"; do
			[ -e "$f" ] || continue
			if grep -rqaF -- "$s" "$f"; then
				echo "a secret (${s:0:6}...) is in $f"; bad=1
			fi
		done
	done
	return $bad
}

# Run a tool in the background; while it runs, sample its command line and
# copy its spool. Sets rc.
run_sampled() {	# tag tool args...
	local tag=$1 pid i=0; shift
	"$@" 2>"$W/err.$tag" &
	pid=$!
	while kill -0 $pid 2>/dev/null; do
		tr '\0' ' ' < /proc/$pid/cmdline >> "$W/cmdline.$tag" 2>/dev/null &&
		    echo >> "$W/cmdline.$tag"
		cp -a "$W/spool" "$W/spool-during.$tag.$i" 2>/dev/null
		i=$((i + 1)); sleep 0.1
	done
	wait $pid; rc=$?
}

new_work; ops_env secrets
b=s3b-ops-secrets; s3_rb $b; s3_mb $b
fill $b 4
head -c $((6 * 1024 * 1024)) /dev/urandom > "$W/root/$b/in/big.bin"
cp "$W/root/$b/in/big.bin" "$W/mirror/$b/in/"
start_proxy 9
# hold the first PUT for two seconds: time to sample /proc/<pid>/cmdline
set_faults '{"rules":[{"match":{"method":"PUT"},"action":"stall","seconds":2,"count":1}]}'
export RSYSLOG_HOST=127.0.0.1 RSYSLOG_PORT=$RSYSLOG_UDP_PORT
n0=$(listener_count)
AWS_ENDPOINT_URL=$PROXY_URL AWS_SESSION_TOKEN=$TOKEN \
    S3BATCH_MULTIPART_THRESHOLD_MB=5 S3BATCH_PART_SIZE_MB=5 \
    ELASTICSEARCH_LOGS_USERNAME=$ESUSER ELASTICSEARCH_LOGS_PASSWORD=$ESPW \
    run_sampled ok1 "$SYNC" -vvv
cat "$W/err.ok1" | tail -5
check_eq "secrets, success (token, ES password): exit 0" "$rc" 0
check "secrets: the command line was sampled" grep -q "s3-sync -vvv" "$W/cmdline.ok1"
check "secrets: the session token was in use (x-amz-security-token)" \
    grep -qF "[\"x-amz-security-token\",\"$TOKEN\"]" "$PROXY_LOG"
check "secrets: the ES password was in use (basic auth)" \
    bash -c "tail -n +$((n0 + 1)) '$L_LOG' | grep -qF 'Basic $BASIC'"
fill $b 2
set_faults '{"rules":[{"match":{"method":"PUT"},"action":"stall","seconds":2,"count":1}]}'
n0=$(listener_count)
AWS_ENDPOINT_URL=$PROXY_URL ELASTICSEARCH_LOGS_API_KEY=$APIKEY \
    run_sampled ok2 "$BATCH" -vvv
check_eq "secrets, s3-batch success (ES API key): exit 0" "$rc" 0
check "secrets: the API key was in use" \
    bash -c "tail -n +$((n0 + 1)) '$L_LOG' | grep -qF 'ApiKey $APIKEY'"
fill $b 3
set_faults '{"rules":[{"match":{"method":"PUT"},"action":"stall","seconds":2,"count":1}]}'
AWS_ENDPOINT_URL=$PROXY_URL AWS_SECRET_ACCESS_KEY=$WRONG AWS_SESSION_TOKEN=$TOKEN \
    ELASTICSEARCH_LOGS_USERNAME=$ESUSER ELASTICSEARCH_LOGS_PASSWORD=$ESPW \
    ELASTICSEARCH_LOGS_API_KEY=$APIKEY run_sampled bad "$SYNC" -vvv
cat "$W/err.bad" | tail -3
check_eq "secrets, refused with 403: exit 1" "$rc" 1
check "secrets: S3 did refuse the signature" grep -q SignatureDoesNotMatch "$W/err.bad"
stop_proxy
sleep 0.5
check "secrets: not on stderr" no_secret_in "$W"/err.*
check "secrets: not in what rsyslogd received" no_secret_in "$RSYSLOG_OUT"
check "secrets: rsyslogd did receive the debug lines" grep -q 'user.debug' "$RSYSLOG_OUT"
check "secrets: not in the spool, during or after the runs" \
    no_secret_in "$W/spool" "$W"/spool-during.*
check "secrets: the spool was copied mid-run" test -d "$W/spool-during.ok1.3"
check "secrets: not in /proc/<pid>/cmdline" no_secret_in "$W"/cmdline.*
check "secrets: not in the manifests" bash -c \
    "aws s3 cp --recursive s3://$FB/secrets '$W/manifests' >/dev/null && ! grep -rqF -e '$GOOD' -e '$TOKEN' -e '$ESPW' -e '$APIKEY' '$W/manifests'"
unset RSYSLOG_HOST RSYSLOG_PORT
stop_rsyslog
s3_rb $b

# --- SIGTERM in the middle of a run ---------------------------------------------
new_work; ops_env term
b=s3b-ops-term; s3_rb $b; s3_mb $b
fill $b 20
start_proxy 11
set_faults '{"rules":[{"match":{"method":"PUT"},"action":"stall","seconds":1.5}]}'
AWS_ENDPOINT_URL=$PROXY_URL S3BATCH_CONCURRENCY=2 "$SYNC" 2>"$W/err" &
pid=$!; BG="$BG $pid"
wait_lock s3-sync $pid
sleep 1
kill -TERM $pid
t0=$(date +%s%N)
wait $pid; rc=$?
ms=$(ms_since "$t0"); cat "$W/err"
stop_proxy
check_eq "SIGTERM: exit 1 (work left)" "$rc" 1
check "SIGTERM: stops at the next safe point (${ms} ms)" test "$ms" -lt 10000
check "SIGTERM: says so" grep -q "stopped by a signal" "$W/err"
in_s3=$(s3_keys $b | sed "s|^|$b/|")
local_left=$(local_files "$W/root")
check "SIGTERM: files were left for the next run" test -n "$local_left"
check_eq "SIGTERM: no file both in S3 and still local" \
    "$(comm -12 <(echo "$in_s3") <(echo "$local_left") | grep -c .)" 0
check_eq "SIGTERM: every file in S3 or still local" \
    "$(printf '%s\n%s\n' "$in_s3" "$local_left" | grep . | LC_ALL=C sort)" "$(mirror_paths)"
check "SIGTERM: what went up has its bytes" present_objects_match $b
"$SYNC" 2>"$W/err"; rc=$?; cat "$W/err"
check_eq "SIGTERM: the next run delivers the rest" "$rc" 0
check_eq "SIGTERM: then every file is in S3" "$(s3_keys $b | sed "s|^|$b/|")" "$(mirror_paths)"
check "SIGTERM: with its bytes" check_objects_match $b "$W/mirror/$b"
check_eq "SIGTERM: nothing left locally" "$(local_files "$W/root")" ""
check_eq "SIGTERM: each file in exactly one manifest entry" "$(fallback_paths term)" "$(mirror_paths)"
check_eq "SIGTERM: the spool is empty" \
    "$(ls -A "$W/spool/s3-sync/batches" "$W/spool/s3-sync/mpu" | grep -v ':$' | grep -c .)" 0
s3_rb $b

s3_rb "$FB"
done_testing
