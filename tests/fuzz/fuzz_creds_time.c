/*
 * creds: ISO-8601 times as AWS writes them, through creds_parse_time().
 *
 * Invariants: 0 or -1; an accepted time lies between 1969-12-31 (1970
 * with a +23:59 offset) and the end of 9999; a plain
 * "YYYY-MM-DDTHH:MM:SSZ" that is accepted prints back to itself, leap
 * seconds aside.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "creds.h"
#include "fuzz.h"

#define YEAR_10000	253402300800LL	/* 10000-01-01T00:00:00Z */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), back[32];
	struct tm tm;
	time_t t = 12345;
	int rc;

	rc = creds_parse_time(s, &t);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc == -1)
		FUZZ_CHECK(t == 12345);
	else {
		FUZZ_CHECK((long long)t >= -86400 &&
		    (long long)t < YEAR_10000 + 86400);
		if (strlen(s) == 20 && s[10] == 'T' && s[19] == 'Z' &&
		    strncmp(s + 17, "60", 2) != 0) {
			FUZZ_CHECK(gmtime_r(&t, &tm) != NULL);
			FUZZ_CHECK(strftime(back, sizeof(back),
			    "%Y-%m-%dT%H:%M:%SZ", &tm) == 20);
			FUZZ_CHECK(strcmp(back, s) == 0);
		}
	}
	free(s);
	return 0;
}
