# rsyslog.sh: a real rsyslogd (Debian's) on 127.0.0.1 for the tests.
# Sourced. It listens with imudp and imtcp on free ports and writes every
# message it receives, one line each, to a file:
#   <input> <facility>.<severity> v<version> <timestamp> <host> <app> <procid> <msgid> <msg>
#
#   start_rsyslog DIR   sets RSYSLOG_UDP_PORT, RSYSLOG_TCP_PORT, RSYSLOG_OUT,
#                       RSYSLOG_PID; returns 1 if it did not come up
#   stop_rsyslog

# A port nobody holds right now on 127.0.0.1 (udp or tcp).
free_port() {
	python3 -c 'import socket, sys
t = socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, t)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' "$1"
}

# 0 when something accepts TCP connections on 127.0.0.1:$1.
tcp_listening() {
	python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.close()' "$1" 2>/dev/null
}

start_rsyslog() {
	local dir=$1 i
	mkdir -p "$dir/work"
	RSYSLOG_UDP_PORT=$(free_port udp)
	RSYSLOG_TCP_PORT=$(free_port tcp)
	RSYSLOG_OUT=$dir/received
	: > "$RSYSLOG_OUT"
	cat > "$dir/rsyslog.conf" <<EOF
global(workDirectory="$dir/work")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="$RSYSLOG_UDP_PORT")
input(type="imtcp" address="127.0.0.1" port="$RSYSLOG_TCP_PORT")
template(name="s3b" type="string"
    string="%inputname% %syslogfacility-text%.%syslogseverity-text% v%protocol-version% %timereported:::date-rfc3339% %hostname% %app-name% %procid% %msgid% %msg%\n")
if \$inputname == "imudp" or \$inputname == "imtcp" then {
	action(type="omfile" file="$RSYSLOG_OUT" template="s3b")
}
EOF
	rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" \
	    >"$dir/rsyslogd.log" 2>&1 &
	RSYSLOG_PID=$!
	for i in $(seq 1 100); do
		if tcp_listening "$RSYSLOG_TCP_PORT"; then
			# imudp binds before imtcp is started: both are up
			return 0
		fi
		kill -0 "$RSYSLOG_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "rsyslogd did not start:"; cat "$dir/rsyslogd.log"
	return 1
}

stop_rsyslog() {
	[ -n "${RSYSLOG_PID:-}" ] || return 0
	kill "$RSYSLOG_PID" 2>/dev/null
	wait "$RSYSLOG_PID" 2>/dev/null
	RSYSLOG_PID=
}

# Wait until the received file has at least $1 lines matching $2 (5 s).
wait_received() {
	local want=$1 re=$2 i
	for i in $(seq 1 50); do
		[ "$(grep -c -- "$re" "$RSYSLOG_OUT")" -ge "$want" ] && return 0
		sleep 0.1
	done
	return 1
}
