/*
 * creds: the INI dialect of ~/.aws/credentials and ~/.aws/config, through
 * creds_parse_ini().
 *
 * Input: the section to look up on the first line, the file's text after
 * it.
 *
 * Invariants: 1, 0 or -1; unless 1, every value is NULL; -1 is ERR_CONFIG
 * with "line N: ..." (or the NUL-byte refusal), never the line's text;
 * values are trimmed and one line long; key names match
 * case-insensitively, so two spellings of one key get the same value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "creds.h"
#include "errbuf.h"
#include "fuzz.h"

static const char *const keys[] = {
	"aws_access_key_id", "aws_secret_access_key", "aws_session_token",
	"region", "AWS_Access_Key_ID",
};
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

static int
blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t slen = nl != NULL ? (size_t)(nl - data) : size, i, len;
	const char *text = nl != NULL ? (const char *)nl + 1 : "";
	size_t tlen = nl != NULL ? size - slen - 1 : 0;
	char *section = fuzz_cstr(data, slen), *values[NKEYS];
	struct errbuf eb;
	int rc;

	memset(values, 0x5a, sizeof(values));
	errbuf_clear(&eb);
	rc = creds_parse_ini(text, tlen, section, keys, values, NKEYS, &eb);
	FUZZ_CHECK(rc == 1 || rc == 0 || rc == -1);
	if (rc == -1) {
		FUZZ_CHECK(eb.kind == ERR_CONFIG);
		FUZZ_CHECK(strncmp(eb.msg, "line ", 5) == 0 ||
		    strcmp(eb.msg, "a NUL byte in the text") == 0);
	} else
		FUZZ_CHECK(eb.kind == ERR_NONE);
	for (i = 0; i < NKEYS; i++) {
		if (rc != 1) {
			FUZZ_CHECK(values[i] == NULL);
			continue;
		}
		if (values[i] == NULL)
			continue;
		len = strlen(values[i]);
		FUZZ_CHECK(strchr(values[i], '\n') == NULL);
		FUZZ_CHECK(len == 0 || (!blank(values[i][0]) &&
		    !blank(values[i][len - 1])));
	}
	FUZZ_CHECK((values[0] == NULL) == (values[4] == NULL));
	if (values[0] != NULL)
		FUZZ_CHECK(strcmp(values[0], values[4]) == 0);
	for (i = 0; i < NKEYS; i++)
		free(values[i]);
	free(section);
	return 0;
}
