#!/usr/bin/env bash
# Runs each unit test program (under $VALGRIND when set) and adds up counts.
set -u
passed=0 failed=0 broken=0
for t in "$@"; do
	out=$(cd "$(dirname "$0")/../.." && ${VALGRIND:-} "$t" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -E 'passed, [0-9]+ failed|check failed|!=|ERROR|==' || true
	line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -1)
	p=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')
	f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
	passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
	if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
		echo "$t: exited $rc"
		broken=$((broken + 1))
	fi
done
failed=$((failed + broken))
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
