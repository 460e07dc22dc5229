/*
 * creds: the JSON answer of ECS or IMDS, through creds_parse_json().
 *
 * Invariants: 0 with a usable access key and secret (printable ASCII, no
 * blank), a session token that is NULL or usable, or -1 with ERR_AUTH and
 * a message. The secret never shapes the outcome's text: the same answer
 * with the letters and digits of SecretAccessKey rotated gives the same
 * return, the same message and the same other fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

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

static void
rotate(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s >= 'a' && *s <= 'z')
			*s = (char)('a' + (*s - 'a' + 1) % 26);
		else if (*s >= 'A' && *s <= 'Z')
			*s = (char)('A' + (*s - 'A' + 1) % 26);
		else if (*s >= '0' && *s <= '9')
			*s = (char)('0' + (*s - '0' + 1) % 10);
	}
}

/* The input with its secret rotated, or NULL when it has none. */
static char *
with_other_secret(const uint8_t *data, size_t size)
{
	cJSON *root = cJSON_ParseWithLength((const char *)data, size);
	cJSON *sk = cJSON_GetObjectItemCaseSensitive(root, "SecretAccessKey");
	char *out = NULL;

	if (cJSON_IsObject(root) && cJSON_IsString(sk)) {
		rotate(sk->valuestring);
		out = cJSON_PrintUnformatted(root);
	}
	cJSON_Delete(root);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct creds a, b;
	struct errbuf ea, eb;
	char *other;
	int ra, rb;

	memset(&a, 0, sizeof(a));
	errbuf_clear(&ea);
	ra = creds_parse_json((const char *)data, size, &a, &ea);
	FUZZ_CHECK(ra == 0 || ra == -1);
	if (ra == 0) {
		check_field(a.access_key);
		check_field(a.secret_key);
		if (a.session_token != NULL)
			check_field(a.session_token);
		FUZZ_CHECK(ea.kind == ERR_NONE);
	} else
		FUZZ_CHECK(ea.kind == ERR_AUTH && ea.msg[0] != '\0');

	if ((other = with_other_secret(data, size)) != NULL) {
		memset(&b, 0, sizeof(b));
		errbuf_clear(&eb);
		rb = creds_parse_json(other, strlen(other), &b, &eb);
		FUZZ_CHECK(ra == rb);
		FUZZ_CHECK(strcmp(ea.msg, eb.msg) == 0);
		if (ra == 0) {
			FUZZ_CHECK(strcmp(a.access_key, b.access_key) == 0);
			FUZZ_CHECK((a.session_token == NULL) ==
			    (b.session_token == NULL));
			FUZZ_CHECK(a.expires == b.expires);
		}
		creds_release(&b);
		cJSON_free(other);
	}
	creds_release(&a);
	return 0;
}
