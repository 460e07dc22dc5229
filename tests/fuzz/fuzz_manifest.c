/*
 * manifest: the spool form read back after a crash, through
 * manifest_from_json().
 *
 * Invariants: 0, or -1 with ERR_IO and an empty manifest; what is read
 * writes out (manifest_to_json) to a text that reads back to the same
 * text, so nothing is lost or changed on a second recovery; what recovery
 * makes of it next, each entry's ElasticSearch document and the fallback
 * object, is one line of valid JSON (es_bulk refuses anything else), the
 * _id 64 hex digits, the fallback key "<prefix>/<y>/<m>/<d>/<id>.json";
 * nothing leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "errbuf.h"
#include "manifest.h"
#include "strbuf.h"
#include "fuzz.h"

#define MAX_DOCS	16	/* entries made into documents, for speed */

/* One line of JSON, as an NDJSON _bulk body needs it. */
static void
check_json_line(const struct strbuf *sb)
{
	cJSON *j;

	FUZZ_CHECK(sb->len > 0 && strlen(sb->buf) == sb->len);
	FUZZ_CHECK(memchr(sb->buf, '\n', sb->len) == NULL);
	FUZZ_CHECK((j = cJSON_ParseWithLength(sb->buf, sb->len)) != NULL);
	FUZZ_CHECK(cJSON_IsObject(j));
	cJSON_Delete(j);
}

static void
check_documents(const struct manifest *m)
{
	struct strbuf sb = STRBUF_INIT;
	char hex[65], tail[64], *key;
	size_t i, klen, tlen;

	for (i = 0; i < m->n && i < MAX_DOCS; i++) {
		strbuf_reset(&sb);
		manifest_doc(m, i, &sb);
		check_json_line(&sb);
		manifest_doc_id(m, i, hex);
		FUZZ_CHECK(strlen(hex) == 64 &&
		    strspn(hex, "0123456789abcdef") == 64);
	}
	if (m->n <= MAX_DOCS) {
		strbuf_reset(&sb);
		manifest_fallback(m, NULL, &sb);
		check_json_line(&sb);
	}
	snprintf(tail, sizeof(tail), "/%s.json", m->id);
	key = manifest_fallback_key(m, "manifests");
	klen = strlen(key);
	tlen = strlen(tail);
	/* "manifests/" "yyyy/mm/dd" (longer past 9999) "/<id>.json" */
	FUZZ_CHECK(strncmp(key, "manifests/", 10) == 0);
	FUZZ_CHECK(klen >= 10 + 10 + tlen);
	FUZZ_CHECK(strcmp(key + klen - tlen, tail) == 0);
	free(key);
	strbuf_release(&sb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest m, again;
	struct strbuf one = STRBUF_INIT, two = STRBUF_INIT;
	struct errbuf eb;
	int rc;

	errbuf_clear(&eb);
	rc = manifest_from_json(&m, (const char *)data, size, &eb);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc == -1) {
		FUZZ_CHECK(eb.kind == ERR_IO);
		FUZZ_CHECK(m.n == 0 && m.e == NULL && m.host == NULL);
		return 0;
	}
	check_documents(&m);
	manifest_to_json(&m, &one);
	FUZZ_CHECK(manifest_from_json(&again, one.buf, one.len, &eb) == 0);
	FUZZ_CHECK(again.n == m.n);
	manifest_to_json(&again, &two);
	FUZZ_CHECK(one.len == two.len && memcmp(one.buf, two.buf,
	    one.len) == 0);
	manifest_release(&again);
	manifest_release(&m);
	strbuf_release(&one);
	strbuf_release(&two);
	return 0;
}
