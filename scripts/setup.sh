#!/usr/bin/env bash
# setup.sh: installs what building and testing s3-batch needs on Debian 12.
# Idempotent and quick when everything is present: it asks dpkg and the shell
# first, and runs apt-get (and apt-get update) only for what is missing.
# Runs as root, non-interactively (CI=true, no stdin). Prints one line per
# thing it installs, and one summary line.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
exec </dev/null

# Build: compiler, pkg-config and the libraries the Makefile links.
BUILD_PKGS="build-essential pkg-config libcurl4-openssl-dev libssl-dev
	libarchive-dev libcjson-dev uuid-dev libexpat1-dev"
# Test servers: single-node Ceph with radosgw (no mgr), rsyslogd.
SERVER_PKGS="ceph-mon ceph-osd radosgw ceph-common rsyslog"
# Second clients and tools the tests and man page checks use.
TOOL_PKGS="rclone s3cmd mandoc strace time valgrind curl python3 jq libarchive-tools
	openjdk-17-jdk-headless maven"

log() { printf 'setup: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
	log "must run as root (installs Debian packages)" >&2
	exit 1
fi

pkg_installed() {
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

missing=""
for p in $BUILD_PKGS $SERVER_PKGS $TOOL_PKGS; do
	pkg_installed "$p" || missing="$missing $p"
done

if [ -n "$missing" ]; then
	aptlog=$(mktemp)
	cleanup() { rm -f "$aptlog"; }
	# Packaged services (rsyslog) must not start: the tests run their own
	# instances on 127.0.0.1. Deny starts while installing, unless the
	# machine already has a policy.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		cleanup() { rm -f "$aptlog" /usr/sbin/policy-rc.d; }
	fi
	trap cleanup EXIT
	log "apt-get update"
	apt-get update -qq >"$aptlog" 2>&1 || { cat "$aptlog" >&2; exit 1; }
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends \
	    -o DPkg::Lock::Timeout=300 \
	    -o Dpkg::Options::=--force-confdef \
	    -o Dpkg::Options::=--force-confold $missing >"$aptlog" 2>&1 ||
	    { cat "$aptlog" >&2; exit 1; }
	for p in $missing; do
		if pkg_installed "$p"; then
			log "installed $p $(dpkg-query -W -f='${Version}' "$p")"
		else
			log "FAILED to install $p" >&2
			exit 1
		fi
	done
fi

# awscli, the tests' second client: any release on PATH will do. All seen
# here crash on radosgw's error bodies (empty <Message>); tests/lib/s3env.sh
# reports the HTTP status and S3 error code instead. Installed from PyPI only
# when no aws is on PATH.
if ! command -v aws >/dev/null 2>&1; then
	if ! python3 -m pip install -q awscli >/dev/null 2>&1; then
		# Debian's own python3 refuses pip installs (PEP 668)
		python3 -m pip install -q --break-system-packages awscli \
		    >/dev/null
	fi
	if command -v pyenv >/dev/null 2>&1; then
		pyenv rehash
	fi
	hash -r
	command -v aws >/dev/null 2>&1 || { log "FAILED to install awscli" >&2; exit 1; }
	log "installed awscli $(aws --version 2>&1 | cut -d' ' -f1)"
fi

if [ -z "$missing" ]; then
	log "all present"
else
	log "done"
fi
