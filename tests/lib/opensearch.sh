#!/usr/bin/env bash
# tests/lib/opensearch.sh - a real single-node OpenSearch 2.19 for the
# integration tests, run in-process by the small Java launcher in
# tests/opensearch (Maven artifacts only, no tarball distribution).
#
# usage: tests/lib/opensearch.sh build|start|stop|status|url
#
#   build   compile the launcher and write its runtime classpath; skipped when
#           the jar and classpath are newer than pom.xml and src/ and every jar
#           on the classpath is still in the local Maven repository. Tries
#           Maven offline first, then online.
#   start   build if needed, stop any node left on $OS_ROOT, wipe $OS_ROOT,
#           start the node in the background and wait until GET / answers.
#   stop    SIGTERM, wait, then SIGKILL; no java process of this node remains.
#   status  exit 0 and print "running pid N on 127.0.0.1:PORT" when up; else 1.
#   url     print http://127.0.0.1:$OS_PORT
#
# environment:
#   OS_ROOT            node home, data, log, pid file  (default /tmp/s3b-opensearch)
#   OS_PORT            HTTP port on 127.0.0.1          (default 9200)
#   OS_TRANSPORT_PORT  transport port on 127.0.0.1     (default 0 = any free port)
#   OS_JAVA_OPTS       JVM options                     (default "-Xms256m -Xmx512m")
#   OS_SETTINGS        extra node settings, space-separated key=value words
#   OS_START_TIMEOUT   seconds to wait for the node    (default 120)
#   OS_STOP_TIMEOUT    seconds before SIGKILL          (default 30)
#   JAVA_HOME / JAVA   the java to run (Java 17; 2.19 is not for newer ones)
#   MVN                the maven command               (default mvn)
#
# files under $OS_ROOT: opensearch.pid, opensearch.log, node/ (home and data).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJ=$(cd "$HERE/../opensearch" && pwd)
OS_ROOT=${OS_ROOT:-/tmp/s3b-opensearch}
OS_PORT=${OS_PORT:-9200}
OS_TRANSPORT_PORT=${OS_TRANSPORT_PORT:-0}
OS_JAVA_OPTS=${OS_JAVA_OPTS:--Xms256m -Xmx512m}
OS_SETTINGS=${OS_SETTINGS:-}
OS_START_TIMEOUT=${OS_START_TIMEOUT:-120}
OS_STOP_TIMEOUT=${OS_STOP_TIMEOUT:-30}
MVN=${MVN:-mvn}
if [ -z "${JAVA:-}" ]; then
    if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA=$JAVA_HOME/bin/java; else JAVA=java; fi
fi

JAR=$PROJ/target/opensearch-launcher-1.0.jar
CP_FILE=$PROJ/target/classpath.txt
PID_FILE=$OS_ROOT/opensearch.pid
LOG_FILE=$OS_ROOT/opensearch.log
NODE_DIR=$OS_ROOT/node
MAIN=s3batch.testing.Launcher

say() { echo "opensearch.sh: $*" >&2; }
die() { say "$*"; exit 1; }

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

build_is_fresh() {
    [ -f "$JAR" ] && [ -f "$CP_FILE" ] || return 1
    # a source newer than the jar or the classpath file?
    if [ -n "$(find "$PROJ/pom.xml" "$PROJ/src" -newer "$JAR" -print -quit)" ]; then return 1; fi
    if [ -n "$(find "$PROJ/pom.xml" "$PROJ/src" -newer "$CP_FILE" -print -quit)" ]; then return 1; fi
    # every jar of the classpath still there (a new machine has an empty repository)
    local j
    local IFS=:
    for j in $(cat "$CP_FILE"); do [ -f "$j" ] || return 1; done
    return 0
}

cmd_build() {
    if build_is_fresh; then return 0; fi
    command -v "$MVN" >/dev/null 2>&1 || die "maven ($MVN) not found"
    local t0; t0=$(now)
    local out; out=$(mktemp)
    say "building launcher in $PROJ"
    if (cd "$PROJ" && "$MVN" -q -B -o package) >"$out" 2>&1; then
        say "built offline in $(since "$t0")s"
    elif (cd "$PROJ" && "$MVN" -q -B package) >"$out" 2>&1; then
        say "built online in $(since "$t0")s"
    else
        cat "$out" >&2; rm -f "$out"
        die "maven build failed"
    fi
    rm -f "$out"
    [ -f "$JAR" ] && [ -s "$CP_FILE" ] || die "build produced no $JAR or $CP_FILE"
    # maven leaves an up-to-date jar untouched: mark this build as fresh
    touch "$JAR" "$CP_FILE"
}

# pids of java processes running this launcher on this node dir (also ones
# whose pid file was lost); matched on the exact main class and directory.
node_pids() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}; pid=${pid%/cmdline}
        [ "$pid" = "$$" ] && continue
        # cmdline is NUL-separated; the launcher gets "$MAIN $NODE_DIR" as args
        # (a process may exit while we look: ignore its vanished file)
        local args; args=$( { tr '\0' '\n' <"$f"; } 2>/dev/null ) || continue
        if grep -qxF "$MAIN" <<<"$args" && grep -qxF "$NODE_DIR" <<<"$args"; then
            echo "$pid"
        fi
    done
}

# alive = exists and is not a zombie waiting for its reaper
pid_alive() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
    local st; st=$( { cat "/proc/$1/stat"; } 2>/dev/null ) || return 1
    st=${st##*) }
    [ "${st%% *}" != Z ]
}

cmd_stop() {
    local pids="" p
    if [ -f "$PID_FILE" ]; then pids=$(cat "$PID_FILE"); fi
    pids="$pids $(node_pids)"
    pids=$(echo $pids | tr ' ' '\n' | sort -u | tr '\n' ' ')
    local live=""
    for p in $pids; do pid_alive "$p" && live="$live $p"; done
    if [ -z "$live" ]; then rm -f "$PID_FILE"; return 0; fi
    local t0; t0=$(now)
    for p in $live; do kill -TERM "$p" 2>/dev/null || true; done
    local deadline=$(( $(date +%s) + OS_STOP_TIMEOUT ))
    while :; do
        local left=""
        for p in $live; do pid_alive "$p" && left="$left $p"; done
        [ -z "$left" ] && break
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "node did not stop in ${OS_STOP_TIMEOUT}s; SIGKILL$left"
            for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
            sleep 0.5
            break
        fi
        sleep 0.1
    done
    for p in $live; do pid_alive "$p" && die "pid $p still running"; done
    [ -z "$(node_pids)" ] || die "java process of $NODE_DIR still running: $(node_pids)"
    rm -f "$PID_FILE"
    say "stopped in $(since "$t0")s"
}

answers() { curl -s -f -m 5 "http://127.0.0.1:$OS_PORT/" >/dev/null 2>&1; }

cmd_start() {
    cmd_build
    cmd_stop
    if answers; then die "something already answers on 127.0.0.1:$OS_PORT"; fi
    case "$OS_ROOT" in /|"") die "refusing OS_ROOT='$OS_ROOT'";; esac
    rm -rf "$OS_ROOT"
    mkdir -p "$NODE_DIR/tmp"
    local cp; cp="$JAR:$(cat "$CP_FILE")"
    local t0; t0=$(now)
    # shellcheck disable=SC2086  # OS_JAVA_OPTS and OS_SETTINGS are word lists
    nohup "$JAVA" $OS_JAVA_OPTS \
        -Dfile.encoding=UTF-8 \
        -Djava.io.tmpdir="$NODE_DIR/tmp" \
        -Djava.locale.providers=SPI,COMPAT \
        -Dlog4j2.disable.jmx=true \
        -Dlog4j.shutdownHookEnabled=false \
        -Dlog4j2.formatMsgNoLookups=true \
        -Dio.netty.noUnsafe=true \
        -Dio.netty.noKeySetOptimization=true \
        -Dio.netty.recycler.maxCapacityPerThread=0 \
        -cp "$cp" "$MAIN" "$NODE_DIR" "$OS_PORT" "$OS_TRANSPORT_PORT" $OS_SETTINGS \
        </dev/null >"$LOG_FILE" 2>&1 &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    local deadline=$(( $(date +%s) + OS_START_TIMEOUT ))
    while :; do
        if ! pid_alive "$pid"; then
            tail -n 40 "$LOG_FILE" >&2 || true
            rm -f "$PID_FILE"
            die "node exited during start (log: $LOG_FILE)"
        fi
        if grep -q "^opensearch ready on 127.0.0.1:$OS_PORT" "$LOG_FILE" && answers; then break; fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            tail -n 40 "$LOG_FILE" >&2 || true
            cmd_stop || true
            die "node not answering on 127.0.0.1:$OS_PORT after ${OS_START_TIMEOUT}s"
        fi
        sleep 0.2
    done
    say "started pid $pid on 127.0.0.1:$OS_PORT in $(since "$t0")s (log: $LOG_FILE)"
}

cmd_status() {
    local pid=""
    [ -f "$PID_FILE" ] && pid=$(cat "$PID_FILE")
    if pid_alive "$pid" && answers; then
        echo "running pid $pid on 127.0.0.1:$OS_PORT"
        return 0
    fi
    echo "not running"
    return 1
}

case "${1:-}" in
    build)  cmd_build ;;
    start)  cmd_start ;;
    stop)   cmd_stop ;;
    status) cmd_status ;;
    url)    echo "http://127.0.0.1:$OS_PORT" ;;
    *) echo "usage: $0 build|start|stop|status|url" >&2; exit 2 ;;
esac
