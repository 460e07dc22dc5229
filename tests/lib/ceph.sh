#!/usr/bin/env bash
# ceph.sh start|stop|status: a throwaway single-node Ceph for the integration
# tests: one ceph-mon, one ceph-osd and radosgw on 127.0.0.1, no ceph-mgr, no
# cephx, no systemd. Every daemon is started with -c $CEPH_ROOT/ceph.conf,
# which is how stop finds them again. State is wiped at every start.
#
# Environment:
#   CEPH_ROOT       state, logs, pid files          default /tmp/s3b-ceph
#   RGW_PORT        radosgw HTTP port               default 7480
#   CEPH_MON_PORT   ceph-mon port (v1 protocol)     default 6789
#   OSD_STORE       bluestore (sparse file under CEPH_ROOT; ~2 s to start,
#                   ~220 MB/s, ~120 MiB RSS) or memstore (RAM; ~1 s to
#                   start, ~135 MB/s, holds 1.6x the stored bytes in RSS)
#                                                   default bluestore
#   OSD_SIZE_GB     capacity of the OSD; writes block when it is 95% full
#                                                   default 16
#   RGW_STORAGE_CLASSES  storage classes besides STANDARD (all stored alike)
#                                                   default "STANDARD_IA GLACIER"
#   S3_ACCESS_KEY,  S3_SECRET_KEY   keys of user "s3b-test"
#   S3_ACCESS_KEY2, S3_SECRET_KEY2  keys of user "s3b-test2" (a separate
#                   account, for credentials handed out by stand-ins)
# Logs: $CEPH_ROOT/log/{mon.a,osd.0,client.rgw.a,...}.log
# Exit status: 0 done / running, 1 failure / not running, 2 usage.
set -euo pipefail

ROOT=${CEPH_ROOT:-/tmp/s3b-ceph}
PORT=${RGW_PORT:-7480}
MON_PORT=${CEPH_MON_PORT:-6789}
STORE=${OSD_STORE:-bluestore}
SIZE_GB=${OSD_SIZE_GB:-16}
CLASSES=${RGW_STORAGE_CLASSES-STANDARD_IA GLACIER}
AK1=${S3_ACCESS_KEY:-AKIAIOSFODNN7EXAMPLE}
SK1=${S3_SECRET_KEY:-wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY}
AK2=${S3_ACCESS_KEY2:-AKIAS3BTESTUSER2KEY0}
SK2=${S3_SECRET_KEY2:-s3bSecondUserSecretKey0000000000EXAMPLE2}
CONF=$ROOT/ceph.conf
DAEMONS="client.rgw.a osd.0 mon.a"

say() { printf 'ceph.sh: %s\n' "$*"; }
die() { printf 'ceph.sh: %s\n' "$*" >&2; exit 1; }
t0=$(date +%s%N)
elapsed() { echo "$(( ($(date +%s%N) - t0) / 1000000 ))ms"; }
trace() { [ -z "${CEPH_TRACE:-}" ] || say "$(elapsed) $*"; }

# A client that talks to a mon which has only just started can send its
# first command before it has the cluster's fsid and get EPERM "wrong fsid"
# back. The commands used here are idempotent: try again.
ceph_cli() {
	local i err="$ROOT/log/ceph-cli.err"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		ceph -c "$CONF" --connect-timeout 20 "$@" 2>"$err.last" && {
			cat "$err.last" >>"$err"
			return 0
		}
		{ echo "ceph $* (attempt $i) failed:"; cat "$err.last"; } >>"$err"
		sleep 0.2
	done
	say "'ceph $*' failed: see $err" >&2
	return 1
}

# rgw_admin ARGS...: radosgw-admin, tried again like ceph_cli (it creates
# pools through the mon). Its output goes to the log, never to the terminal:
# "user create" prints the user's keys. Exit status 17 (EEXIST) on a second
# attempt means the first one got through.
rgw_admin() {
	local i rc err="$ROOT/log/radosgw-admin.err"
	for i in 1 2 3 4 5 6 7 8 9 10; do
		rc=0
		radosgw-admin -c "$CONF" "$@" >/dev/null 2>>"$err" || rc=$?
		[ "$rc" -ne 0 ] || return 0
		[ "$rc" -ne 17 ] || [ "$i" -eq 1 ] || return 0
		echo "radosgw-admin $1 $2 (attempt $i) failed: exit $rc" >>"$err"
		sleep 0.2
	done
	say "'radosgw-admin $1 $2' failed: see $err" >&2
	return 1
}

# Pids of the processes started with exactly "-c $CONF" on their command
# line: the daemons of this instance and nothing else.
instance_pids() {
	local d a args
	for d in /proc/[0-9]*; do
		args=()
		{ mapfile -d '' args <"$d/cmdline"; } 2>/dev/null || continue
		for a in "${args[@]}"; do
			if [ "$a" = "$CONF" ]; then
				printf '%s\n' "${d#/proc/}"
				break
			fi
		done
	done
}

pid_of() {
	local f="$ROOT/run/$1.pid" pid
	[ -s "$f" ] || return 1
	pid=$(cat "$f")
	alive "$pid" || return 1
	printf '%s\n' "$pid"
}

# A daemon's parent is init, which may take seconds to reap it here: a
# zombie has closed its sockets and counts as gone.
alive() {
	local state
	state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) ||
	    return 1
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

wait_gone() {
	local pid=$1 i
	for i in $(seq 200); do
		alive "$pid" || return 0
		sleep 0.05
	done
	return 1
}

# SIGTERM, in the order that lets each daemon leave cleanly (clients hang in
# shutdown when the mon goes first); SIGKILL for any that take over 10 s.
stop_daemon() {
	local name=$1 pid
	pid=$(pid_of "$name") || return 0
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_gone "$pid"; then
		say "$name (pid $pid) still running 10s after SIGTERM:" \
		    "SIGKILL" >&2
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" || true
	fi
	rm -f "$ROOT/run/$name.pid"
}

do_stop() {
	local name pid left
	for name in $DAEMONS; do
		stop_daemon "$name"
	done
	# Anything else still holding our config: a daemon whose pid file was
	# lost, or a hung client.
	left=$(instance_pids)
	if [ -n "$left" ]; then
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null || true
		for pid in $left; do wait_gone "$pid" || true; done
	fi
	left=$(instance_pids)
	[ -z "$left" ] || die "still running after stop: $(echo $left)"
}

write_conf() {
	local fsid=$1
	cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon_host = v1:127.0.0.1:$MON_PORT
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_msgr2 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
keyring = $ROOT/keyring
run_dir = $ROOT/run
crash_dir = $ROOT/crash
log_file = $ROOT/log/\$name.log
log_to_stderr = false
err_to_stderr = true
mon_cluster_log_file = $ROOT/log/cluster.log

# One OSD: one copy, few PGs, no warnings about either.
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_max_pg_per_osd = 1000
mon_warn_on_pool_no_redundancy = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
mon_warn_on_msgr2_not_enabled = false
mon_data_avail_warn = 1
mon_data_avail_crit = 0

# Every osdmap change (osd boot, each pool radosgw creates) otherwise waits
# for the default 1 s paxos batching interval: most of the start time.
paxos_propose_interval = 0.01
paxos_min_wait = 0.001

[mon]
mon_data = $ROOT/mon/\$cluster-\$id
pid_file = $ROOT/run/\$name.pid
admin_socket = $ROOT/run/\$name.asok

[osd]
osd_data = $ROOT/osd/\$cluster-\$id
pid_file = $ROOT/run/\$name.pid
admin_socket = $ROOT/run/\$name.asok
osd_objectstore = $STORE
osd_class_update_on_start = false
# The OSD would add itself to the CRUSH map, but with a fast mon it can send
# that command before it knows the cluster fsid ("wrong fsid"): start_osd
# adds it instead.
osd_crush_update_on_start = false
osd_memory_target = 1073741824
memstore_device_bytes = $((SIZE_GB * 1024 * 1024 * 1024))
bluestore_block_path = $ROOT/osd/block-\$id.img
bluestore_block_create = true
bluestore_block_size = $((SIZE_GB * 1024 * 1024 * 1024))
bluestore_fsck_on_mount = false
# bluestore closes its block device a dozen times while it starts, and each
# close waits for the aio thread's poll timeout (250 ms by default)
bdev_aio_poll_ms = 20

[client.rgw.a]
pid_file = $ROOT/run/\$name.pid
admin_socket = $ROOT/run/\$name.asok
rgw_data = $ROOT/rgw
rgw_frontends = beast endpoint=127.0.0.1:$PORT
# <bucket>.localhost:$PORT is virtual-hosted style
rgw_dns_name = localhost
rgw_enable_usage_log = false
rgw_enable_ops_log = false
rgw_thread_pool_size = 128
rgw_max_concurrent_requests = 4096
rgw_dynamic_resharding = false
rgw_enable_lc_threads = false
# Deleted and overwritten data is reclaimed within seconds, not hours, so a
# long suite does not fill the OSD.
rgw_gc_obj_min_wait = 10
rgw_gc_processor_period = 10
# SSE over plain http; "aws:kms" with this test-only key id
rgw_crypt_require_ssl = false
rgw_crypt_s3_kms_backend = testing
rgw_crypt_s3_kms_encryption_keys = s3b-test-key=$(head -c 32 /dev/urandom | base64)
# One line per request: method, path, status, latency
debug_rgw = 1
EOF
}

start_mon() {
	local fsid=$1
	# --add would make any port but 6789 a msgr2 address, which a mon
	# with ms_bind_msgr2=false never answers on: name the protocol.
	monmaptool --create --addv a "[v1:127.0.0.1:$MON_PORT]" \
	    --fsid "$fsid" "$ROOT/monmap" >/dev/null
	ceph-mon -c "$CONF" --mkfs -i a --monmap "$ROOT/monmap" \
	    >"$ROOT/log/mon-mkfs.out" 2>&1 ||
	    die "ceph-mon --mkfs failed: see $ROOT/log/mon-mkfs.out"
	# daemonizes once it listens; writes run/mon.a.pid
	ceph-mon -c "$CONF" -i a 2>>"$ROOT/log/mon-start.err" ||
	    die "ceph-mon failed: see $ROOT/log/mon.a.log"
}

start_osd() {
	local uuid i out
	uuid=$(cat /proc/sys/kernel/random/uuid)
	ceph_cli osd new "$uuid" >/dev/null || exit 1
	ceph_cli osd crush add osd.0 1.0 root=default >/dev/null || exit 1
	ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" \
	    >"$ROOT/log/osd-mkfs.out" 2>&1 ||
	    die "ceph-osd --mkfs failed: see $ROOT/log/osd-mkfs.out"
	ceph-osd -c "$CONF" -i 0 2>>"$ROOT/log/osd-start.err" ||
	    die "ceph-osd failed: see $ROOT/log/osd.0.log"
	for i in $(seq 300); do
		out=$(ceph_cli osd stat) || exit 1
		[[ $out != *" 1 up"* ]] || return 0
		sleep 0.1
	done
	die "osd.0 not up after 30s: see $ROOT/log/osd.0.log"
}

start_rgw() {
	local i
	radosgw -c "$CONF" -n client.rgw.a 2>>"$ROOT/log/rgw-start.err" ||
	    die "radosgw failed: see $ROOT/log/client.rgw.a.log"
	for i in $(seq 600); do
		curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/" &&
		    return 0
		pid_of client.rgw.a >/dev/null ||
		    die "radosgw exited: see $ROOT/log/client.rgw.a.log"
		sleep 0.1
	done
	die "radosgw not answering on 127.0.0.1:$PORT after 60s"
}

# Storage classes live in the zone's placement target, which radosgw reads
# when it starts: add them before. Any ordinary command creates the default
# zone and zonegroup, which "placement add" needs.
add_storage_classes() {
	local c
	[ -n "$CLASSES" ] || return 0
	rgw_admin user list || return 1
	for c in $CLASSES; do
		rgw_admin zonegroup placement add --rgw-zonegroup default \
		    --placement-id default-placement --storage-class "$c" ||
		    return 1
		rgw_admin zone placement add --rgw-zone default \
		    --placement-id default-placement --storage-class "$c" \
		    --data-pool default.rgw.buckets.data || return 1
	done
}

create_user() {
	rgw_admin user create --uid="$1" --display-name="$1" \
	    --access-key="$2" --secret-key="$3"
}

port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# CEPH_ROOT is wiped at start: refuse a directory that holds anything but a
# previous instance.
check_root() {
	[ -e "$ROOT" ] || return 0
	[ -d "$ROOT" ] && [ "$ROOT" != / ] ||
	    die "CEPH_ROOT '$ROOT' is not a directory"
	[ -e "$CONF" ] || [ -z "$(ls -A "$ROOT")" ] ||
	    die "CEPH_ROOT '$ROOT' is not empty and holds no ceph.conf:" \
	    "not wiping it"
}

do_start() {
	local fsid p
	check_root
	do_stop
	for p in "$MON_PORT" "$PORT"; do
		! port_busy "$p" || die "port $p on 127.0.0.1 is already in use"
	done
	# a start that fails half way leaves nothing running (logs are kept)
	trap 'do_stop >/dev/null 2>&1 || true' EXIT
	rm -rf "$ROOT"
	mkdir -p "$ROOT"/{run,log,crash,mon,osd/ceph-0,rgw}
	fsid=$(cat /proc/sys/kernel/random/uuid)
	write_conf "$fsid"
	trace "starting ceph-mon"
	start_mon "$fsid"
	trace "starting ceph-osd ($STORE)"
	start_osd
	trace "adding storage classes: ${CLASSES:-none}"
	add_storage_classes || exit 1
	trace "starting radosgw"
	start_rgw
	trace "creating users"
	create_user s3b-test "$AK1" "$SK1" &
	p=$!
	create_user s3b-test2 "$AK2" "$SK2" ||
	    { wait "$p"; exit 1; }
	wait "$p" || exit 1
	trap - EXIT
	say "radosgw ready on http://127.0.0.1:$PORT in $(elapsed)" \
	    "($STORE; logs in $ROOT/log)"
}

do_status() {
	local name pid rc=0
	for name in $DAEMONS; do
		if pid=$(pid_of "$name"); then
			say "$name running, pid $pid," \
			    "rss $(awk '/VmRSS/ {print $2 " " $3}' \
			    "/proc/$pid/status")"
		else
			say "$name not running"
			rc=1
		fi
	done
	if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; then
		say "radosgw answers on http://127.0.0.1:$PORT"
	else
		say "radosgw does not answer on http://127.0.0.1:$PORT"
		rc=1
	fi
	return $rc
}

case "${1:-}" in
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
*) echo "usage: ceph.sh start|stop|status" >&2; exit 2 ;;
esac
