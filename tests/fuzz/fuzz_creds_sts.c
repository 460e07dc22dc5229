/*
 * creds: STS's AssumeRoleWithWebIdentity answer, through
 * creds_parse_sts_xml() (expat with a wiping allocator; DOCTYPE refused).
 *
 * Invariants: 0 with a usable access key and secret and a token NULL or
 * usable, or -1 with ERR_AUTH and a message; nothing leaks, and
 * expat's buffers go through the wiping allocator without a bad free.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "errbuf.h"
#include "fuzz.h"

static void
check_field(const char *v)
{
	const unsigned char *p = (const unsigned char *)v;

	FUZZ_CHECK(v != NULL && *v != '\0');
	for (; *p != '\0'; p++)
		FUZZ_CHECK(*p > ' ' && *p < 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct creds c;
	struct errbuf eb;
	int rc;

	memset(&c, 0, sizeof(c));
	errbuf_clear(&eb);
	rc = creds_parse_sts_xml((const char *)data, size, &c, &eb);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc == 0) {
		check_field(c.access_key);
		check_field(c.secret_key);
		if (c.session_token != NULL)
			check_field(c.session_token);
		FUZZ_CHECK(eb.kind == ERR_NONE);
	} else
		FUZZ_CHECK(eb.kind == ERR_AUTH && eb.msg[0] != '\0');
	creds_release(&c);
	return 0;
}
