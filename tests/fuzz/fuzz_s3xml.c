/*
 * s3xml: S3's XML answers (errors, CreateMultipartUpload,
 * CompleteMultipartUpload) through s3xml_parse().
 *
 * Invariants: 0 or -1; every field NUL-terminated inside its array; the
 * result does not depend on what the struct held before. libFuzzer's
 * buffer is exactly size bytes, so ASan catches a read past len.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3xml.h"
#include "fuzz.h"

#define TERMINATED(f)	(memchr((f), '\0', sizeof(f)) != NULL)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct s3xml *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	int ra, rb;

	memset(a, 0xa5, sizeof(*a));
	memset(b, 0x00, sizeof(*b));
	ra = s3xml_parse((const char *)data, size, a);
	rb = s3xml_parse((const char *)data, size, b);
	FUZZ_CHECK(ra == 0 || ra == -1);
	FUZZ_CHECK(ra == rb);
	FUZZ_CHECK(TERMINATED(a->root) && TERMINATED(a->code) &&
	    TERMINATED(a->message) && TERMINATED(a->region) &&
	    TERMINATED(a->upload_id) && TERMINATED(a->etag) &&
	    TERMINATED(a->key));
	FUZZ_CHECK(strcmp(a->root, b->root) == 0 &&
	    strcmp(a->code, b->code) == 0 &&
	    strcmp(a->message, b->message) == 0 &&
	    strcmp(a->region, b->region) == 0 &&
	    strcmp(a->upload_id, b->upload_id) == 0 &&
	    strcmp(a->etag, b->etag) == 0 && strcmp(a->key, b->key) == 0);
	free(a);
	free(b);
	return 0;
}
