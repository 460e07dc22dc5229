#!/usr/bin/env bash
# The fault proxy's own self-test: the tests rely on it passing bytes through.
exec python3 "$S3B_TOP/tests/lib/test_faultproxy.py"
