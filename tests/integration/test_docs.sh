#!/usr/bin/env bash
# The documentation against the code: every environment variable the
# sources read is in both man pages (an ENVIRONMENT item that gives its
# default), in the README's configuration table (with a default column),
# and in the environment file example; the numeric defaults of config.h are
# the ones written; `mandoc -T lint` says nothing about either page.
. "$S3B_TOP/tests/lib/common.sh"
cd "$S3B_TOP" || exit 1

# Every variable the code reads: names passed to getenv() and to the
# config and credentials modules' env helpers (calls may span lines), and
# every whole string literal that is one of the project's variable names.
env_vars() {
	python3 - src/*.c <<'PY'
import re, sys
call = re.compile(r'\b(?:getenv|env_\w+|env|get|shared_path)\s*\(\s*'
                  r'(?:[\w>.-]+\s*,\s*)?"([A-Z][A-Z0-9_]*)"', re.S)
lit = re.compile(r'"((?:AWS|S3BATCH|S3|ELASTICSEARCH|RSYSLOG|MANIFEST|MAX_BATCH)'
                 r'_[A-Z0-9_]+)"')
names = set()
for f in sys.argv[1:]:
    text = open(f, encoding="utf-8", errors="replace").read()
    names |= set(call.findall(text)) | set(lit.findall(text))
print("\n".join(sorted(names)))
PY
}

# The man page's ENVIRONMENT items: "VAR<TAB>1" when an item naming VAR
# says "Default" or "Required", "VAR<TAB>0" when it names VAR without.
man_items() {
	python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
env = text.split("\n.Sh ENVIRONMENT", 1)[1].split("\n.Sh ", 1)[0]
items = re.split(r"\n\.It ", env)[1:]
for it in items:
    head, _, body = it.partition("\n")
    body = body.split("\n.El", 1)[0]
    ok = 1 if re.search(r"Default|Required", body) else 0
    # the text as read: macro names dropped
    words = " ".join(re.sub(r"^\.[A-Z][a-z]+ ?", "", l) for l in body.split("\n"))
    for name in re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", head):
        if name != "Ev":
            print(f"{name}\t{ok}\t{' '.join(words.split())}")
PY
}

# README rows: "VAR<TAB>default column" for every table row naming VAR
# in its first column.
readme_rows() {
	python3 - README.md <<'PY'
import re, sys
for line in open(sys.argv[1]):
    if not line.startswith("|"):
        continue
    cols = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cols) < 2:
        continue
    for name in re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", cols[0]):
        print(f"{name}\t{cols[1]}")
PY
}

vars=$(env_vars)
n=$(wc -l <<<"$vars")
echo "variables read by the code ($n):"; echo "$vars" | paste -sd' '
check "the sources read at least 40 variables (found $n)" test "$n" -ge 40

for page in man/s3-batch.1 man/s3-sync.1; do
	items=$(man_items "$page")
	missing= nodefault=
	while IFS= read -r v; do
		got=$(awk -F'\t' -v v="$v" '$1 == v { print $2 }' <<<"$items" | sort -r | head -1)
		if [ -z "$got" ]; then missing="$missing $v"
		elif [ "$got" != 1 ]; then nodefault="$nodefault $v"; fi
	done <<<"$vars"
	check_eq "$page: every variable has an ENVIRONMENT item" "${missing# }" ""
	check_eq "$page: every item gives the default (or says required)" "${nodefault# }" ""
	lint=$(mandoc -T lint "$page" 2>&1); rc=$?
	check_eq "$page: mandoc -T lint reports nothing" "$lint" ""
	check_eq "$page: mandoc -T lint exit status" "$rc" 0
done

rows=$(readme_rows)
missing= nodefault=
while IFS= read -r v; do
	got=$(awk -F'\t' -v v="$v" '$1 == v { print $2; exit }' <<<"$rows")
	if ! awk -F'\t' -v v="$v" '$1 == v { f = 1 } END { exit !f }' <<<"$rows"; then
		missing="$missing $v"
	elif [ -z "$got" ]; then nodefault="$nodefault $v"; fi
done <<<"$vars"
check_eq "README.md: every variable is in the configuration table" "${missing# }" ""
check_eq "README.md: every row gives a default" "${nodefault# }" ""

missing=
while IFS= read -r v; do
	grep -qE "(^|[^A-Z0-9_])$v([^A-Z0-9_]|$)" contrib/s3-batch.env.example ||
	    missing="$missing $v"
done <<<"$vars"
check_eq "contrib/s3-batch.env.example names every variable" "${missing# }" ""

# The defaults config.h defines are the ones the man pages and README say.
default_of() { sed -n "s/^#define $1[[:space:]]*//p" include/config.h | tr -d '"'; }
for pair in S3BATCH_CONCURRENCY:CONFIG_DEFAULT_CONCURRENCY \
    S3BATCH_MULTIPART_THRESHOLD_MB:CONFIG_DEFAULT_MULTIPART_MB \
    S3BATCH_PART_SIZE_MB:CONFIG_DEFAULT_PART_MB \
    MAX_BATCH_SIZE_MB:CONFIG_DEFAULT_BATCH_MB \
    AWS_MAX_ATTEMPTS:CONFIG_DEFAULT_MAX_ATTEMPTS \
    S3BATCH_IGNORE:CONFIG_DEFAULT_IGNORE; do
	v=${pair%%:*} def=$(default_of "${pair#*:}")
	for page in man/s3-batch.1 man/s3-sync.1; do
		body=$(man_items "$page" | awk -F'\t' -v v="$v" '$1 == v { print $3 }')
		check "$page: $v default '$def' as in config.h" \
		    grep -qF -- "Default: $def" <<<"$body"
	done
	row=$(readme_rows | awk -F'\t' -v v="$v" '$1 == v { print $2; exit }' | tr -d '`')
	check_eq "README.md: $v default as in config.h" "$row" "$def"
done

# The flags the man pages document are the ones the tools accept.
for t in s3-batch s3-sync; do
	help=$("$S3B_BUILD/$t" --help)
	for f in --dry-run --status --help --version -v -q; do
		check "$t --help names $f" grep -qe "$f" <<<"$help"
		check "man/$t.1 documents $f" grep -qe "Fl \\\\${f#-}\\b\|Fl ${f#-}\\b\|Fl [a-z]*${f#-}" "man/$t.1"
	done
done

done_testing
