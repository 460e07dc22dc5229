#!/usr/bin/env bash
# tests/fuzz/coverage.sh - line coverage of the parsers by the committed
# corpora: each target is rebuilt with clang's source-based coverage (no
# sanitizer), run once over tests/fuzz/corpus/<target>/, and llvm-cov
# reports the functions it reached in its module.
#
# usage: tests/fuzz/coverage.sh [target...]   (default: every target)
# environment: FUZZ_B (build-fuzz), FUZZ_CC (clang), LLVM_COV, LLVM_PROFDATA
#
# Prints per target: the module, the functions reached, and the lines
# covered within them ("lines in reached functions"), which says how
# much of the parsing code the corpus exercises without counting the
# module's I/O code that no parser calls.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
B=${FUZZ_B:-$ROOT/build-fuzz}/cov
CC=${FUZZ_CC:-clang}
LLVM_COV=${LLVM_COV:-llvm-cov}
LLVM_PROFDATA=${LLVM_PROFDATA:-llvm-profdata}
PKGS="libcurl libcrypto libarchive libcjson uuid expat"
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O0 -fprofile-instr-generate
    -fcoverage-mapping -I$ROOT/include -I$HERE $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lpthread"

module() {
	case $1 in
	sigv4) echo sigv4 ;; config) echo config ;; s3xml) echo s3xml ;;
	es_bulk) echo es ;; creds_*) echo creds ;; manifest) echo manifest ;;
	esac
}

[ $# -gt 0 ] || set -- sigv4 config s3xml es_bulk creds_json creds_sts \
    creds_ini creds_time manifest
mkdir -p "$B/obj"
for src in "$ROOT"/src/*.c; do
	case $(basename "$src") in s3-batch.c|s3-sync.c|tool_*) continue ;; esac
	obj="$B/obj/$(basename "$src" .c).o"
	[ "$obj" -nt "$src" ] || $CC $CFLAGS -c -o "$obj" "$src"
done
rm -f "$B/lib.a"
ar rcs "$B/lib.a" "$B"/obj/*.o

for t in "$@"; do
	m=$(module "$t")
	$CC $CFLAGS -fsanitize=fuzzer -o "$B/fuzz_$t" "$HERE/fuzz_$t.c" \
	    "$B/lib.a" $LIBS
	rm -f "$B/$t".profraw
	LLVM_PROFILE_FILE="$B/$t.profraw" "$B/fuzz_$t" -runs=0 \
	    "$HERE/corpus/$t" >/dev/null 2>&1
	$LLVM_PROFDATA merge -o "$B/$t.profdata" "$B/$t.profraw"
	# Function lines: name, regions, missed, cover, lines, missed, cover.
	$LLVM_COV report -show-functions "$B/fuzz_$t" \
	    -instr-profile="$B/$t.profdata" "$ROOT/src/$m.c" |
	    awk -v t="$t" -v m="$m" '
	    NF >= 7 && $NF ~ /%$/ && $1 != "Name" && $1 != "TOTAL" {
		if ($(NF-1) + 0 == $(NF-2) + 0) next	# not reached
		nf++; lines += $(NF-2); missed += $(NF-1)
	    }
	    END {
		printf "coverage: %-11s src/%s.c: %d functions reached, " \
		    "%d/%d lines in them (%.0f%%)\n", t, m, nf,
		    lines - missed, lines, lines ? 100 * (lines - missed) / lines : 0
	    }'
done
