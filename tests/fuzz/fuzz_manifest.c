/*
 * manifest: the spool form read back after a crash, through
 * manifest_from_json().
 *
 * Invariants: 0, or -1 with ERR_IO and an empty manifest; what is read
 * writes out (manifest_to_json) to a text that reads back to the same
 * text, so nothing is lost or changed on a second recovery; nothing
 * leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "manifest.h"
#include "strbuf.h"
#include "fuzz.h"

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
