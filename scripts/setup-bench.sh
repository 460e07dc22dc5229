#!/usr/bin/env bash
# setup-bench.sh: installs the peers `make bench` (tests/bench/run.sh)
# measures s3-sync and s3-batch against, on Debian 12, as root. Idempotent:
# quick and silent but for one summary line when everything is present.
#
#   Debian packages: rclone s3cmd wrk time hyperfine (hyperfine is optional)
#   awscli:          any `aws` on PATH (scripts/setup.sh installs one)
#   s5cmd:           built with `go install` into $(go env GOPATH)/bin
#                    (override with S5CMD_BIN_DIR); needs Go on PATH
#
# s5cmd: `go install github.com/peak/s5cmd/v2@latest` is tried first. The Go
# module proxy this machine reaches refuses to list s5cmd's versions (HTTP 403
# on @v/list), which both @latest and the deprecation check of
# `go install PKG@VERSION` need; it does serve the pinned version. So the
# fallback builds S5CMD_VERSION (default v2.3.0, the newest release) from a
# throwaway module that requires it, which needs no version list.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
exec </dev/null

S5CMD_VERSION=${S5CMD_VERSION:-v2.3.0}
PKGS="rclone s3cmd wrk time hyperfine"

log() { printf 'setup-bench: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
	log "must run as root (installs Debian packages)" >&2
	exit 1
fi

pkg_installed() {
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

did=""
missing=""
for p in $PKGS; do
	pkg_installed "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	aptlog=$(mktemp)
	trap 'rm -f "$aptlog"' EXIT
	log "apt-get update"
	apt-get update -qq >"$aptlog" 2>&1 || { cat "$aptlog" >&2; exit 1; }
	for p in $missing; do
		# one at a time: hyperfine is optional and may be missing
		if apt-get install -y -qq --no-install-recommends \
		    -o DPkg::Lock::Timeout=300 "$p" >"$aptlog" 2>&1; then
			log "installed $p $(dpkg-query -W -f='${Version}' "$p")"
			did=1
		elif [ "$p" = hyperfine ]; then
			log "hyperfine not installed (optional)"
		else
			cat "$aptlog" >&2
			log "FAILED to install $p" >&2
			exit 1
		fi
	done
fi

command -v aws >/dev/null 2>&1 ||
    log "no aws on PATH: run scripts/setup.sh (awscli is a peer and the" \
    "checking client)" >&2

# ---- s5cmd ----------------------------------------------------------------

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	PATH=$PATH:/usr/local/go/bin
fi
if ! command -v go >/dev/null 2>&1; then
	log "no Go toolchain on PATH: s5cmd not installed (the bench skips it)" >&2
else
	bindir=${S5CMD_BIN_DIR:-$(go env GOPATH)/bin}
	if [ -x "$bindir/s5cmd" ]; then
		:
	else
		mkdir -p "$bindir"
		golog=$(mktemp)
		t0=$(date +%s)
		if GOBIN=$bindir go install github.com/peak/s5cmd/v2@latest \
		    >"$golog" 2>&1; then
			how="@latest"
		else
			# a module of our own that requires the pinned release
			mod=$(mktemp -d)
			cat >"$mod/go.mod" <<EOF
module s3batch.local/benchtools

go 1.21

require github.com/peak/s5cmd/v2 $S5CMD_VERSION
EOF
			cat >"$mod/tools.go" <<'EOF'
//go:build tools

package tools

import _ "github.com/peak/s5cmd/v2"
EOF
			if (cd "$mod" && go mod tidy && GOBIN=$bindir go install \
			    -ldflags "-X github.com/peak/s5cmd/v2/version.Version=$S5CMD_VERSION -X github.com/peak/s5cmd/v2/version.GitCommit=module" \
			    github.com/peak/s5cmd/v2) >>"$golog" 2>&1; then
				how="$S5CMD_VERSION (pinned: @latest is not listed here)"
			else
				cat "$golog" >&2
				rm -rf "$mod" "$golog"
				log "FAILED to build s5cmd" >&2
				exit 1
			fi
			rm -rf "$mod"
		fi
		rm -f "$golog"
		log "installed s5cmd $how in $bindir/s5cmd ($(( $(date +%s) - t0 )) s)"
		did=1
	fi
fi

if [ -z "$did" ]; then
	log "all present"
else
	log "done"
fi
