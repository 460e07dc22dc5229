/*
 * es: the _bulk answer, through es_parse_bulk_response() (the code
 * es_bulk() runs on every 2xx answer).
 *
 * Input: one byte giving the number of documents sent (0 to 31), then the
 * answer's body.
 *
 * Invariants: 0, or -1 with ERR_REMOTE and every document UNSENT; each
 * outcome is one of the three; a warning is logged only for a REJECTED
 * document, one each; nothing leaks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "es.h"
#include "log.h"
#include "fuzz.h"

#define MAX_DOCS	32

static size_t nwarn;

static void
count_warnings(enum log_level level, const char *line, void *arg)
{
	(void)arg;
	(void)line;
	if (level == LOG_LVL_WARN)
		nwarn++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char ids[MAX_DOCS][16];
	struct es_doc docs[MAX_DOCS];
	enum es_item result[MAX_DOCS];
	struct errbuf eb;
	size_t n, i, rejected = 0;
	int rc;

	if (size == 0)
		return 0;
	log_set_handler(count_warnings, NULL);
	n = data[0] % MAX_DOCS;
	for (i = 0; i < n; i++) {
		snprintf(ids[i], sizeof(ids[i]), "doc%zu", i);
		docs[i].id = ids[i];
		docs[i].json = "{}";
		docs[i].json_len = 2;
	}
	nwarn = 0;
	errbuf_clear(&eb);
	rc = es_parse_bulk_response("s3-batch-manifest", docs, n,
	    (const char *)data + 1, size - 1, result, &eb);
	FUZZ_CHECK(rc == 0 || rc == -1);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(result[i] == ES_ITEM_OK ||
		    result[i] == ES_ITEM_REJECTED ||
		    result[i] == ES_ITEM_UNSENT);
		FUZZ_CHECK(rc == 0 || result[i] == ES_ITEM_UNSENT);
		rejected += result[i] == ES_ITEM_REJECTED;
	}
	if (rc == -1)
		FUZZ_CHECK(eb.kind == ERR_REMOTE && nwarn == 0);
	FUZZ_CHECK(nwarn == rejected);
	return 0;
}
