/*
 * sigv4: the canonical request and S3's percent-encoding.
 *
 * Input: fields separated by NUL bytes: method, path, query, payload
 * hash, then header name and value pairs; a missing field is NULL. The
 * whole input, NUL bytes included, is also percent-encoded.
 *
 * Invariants: the encoding holds only unreserved bytes, '%XX' (upper-case
 * hex, never for an unreserved byte) and, when kept, '/', and decodes
 * back to the input. A canonical request has one line per distinct header
 * name plus six; its path line decodes to the path; its query is sorted,
 * canonically encoded and a fixed point; header names are lower-case,
 * sorted and match the signed list; values have no line break, tab or
 * double space. A refusal is ERR_INTERNAL and leaves both outputs as
 * they were.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errbuf.h"
#include "sigv4.h"
#include "strbuf.h"
#include "fuzz.h"

#define MAX_FIELDS	(4 + 2 * 32)
#define SENTINEL	"sentinel"

static int
unreserved(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
	    c == '~';
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;	/* lower case is not canonical */
}

/*
 * Check that enc (len bytes) is a canonical encoding and decode it into
 * dec (at least len bytes); returns the decoded length.
 */
static size_t
check_encoding(const char *enc, size_t len, int keep_slash, char *dec)
{
	size_t i, n = 0;
	int c, hi, lo;

	for (i = 0; i < len; i++) {
		c = (unsigned char)enc[i];
		if (c != '%') {
			FUZZ_CHECK(unreserved(c) || (c == '/' && keep_slash));
			dec[n++] = (char)c;
			continue;
		}
		FUZZ_CHECK(i + 2 < len);
		hi = hexval((unsigned char)enc[i + 1]);
		lo = hexval((unsigned char)enc[i + 2]);
		FUZZ_CHECK(hi >= 0 && lo >= 0);
		c = hi << 4 | lo;
		FUZZ_CHECK(!unreserved(c) && !(c == '/' && keep_slash));
		dec[n++] = (char)c;
		i += 2;
	}
	return n;
}

static void
fuzz_encode(const uint8_t *data, size_t size, int keep_slash)
{
	struct strbuf out = STRBUF_INIT;
	char *dec;
	size_t n;

	strbuf_adds(&out, SENTINEL);
	sigv4_uri_encode(&out, (const char *)data, size, keep_slash);
	FUZZ_CHECK(memcmp(out.buf, SENTINEL, strlen(SENTINEL)) == 0);
	FUZZ_CHECK(out.buf[out.len] == '\0');
	dec = malloc(out.len + 1);
	n = check_encoding(out.buf + strlen(SENTINEL),
	    out.len - strlen(SENTINEL), keep_slash, dec);
	FUZZ_CHECK(n == size && memcmp(dec, data, size) == 0);
	free(dec);
	strbuf_release(&out);
}

/* Split the canonical request into at most max lines (pointers into s). */
static size_t
split_lines(char *s, char **lines, size_t max)
{
	size_t n = 0;
	char *nl;

	for (;;) {
		FUZZ_CHECK(n < max);
		lines[n++] = s;
		if ((nl = strchr(s, '\n')) == NULL)
			return n;
		*nl = '\0';
		s = nl + 1;
	}
}

static void
check_query(const char *q)
{
	char *copy = strdup(q), *p, *amp, *eq, *prev = NULL, *dec;
	int c;

	dec = malloc(strlen(q) + 1);
	for (p = copy; *p != '\0'; p = amp + 1) {
		amp = strchr(p, '&');
		if (amp != NULL)
			*amp = '\0';
		eq = strchr(p, '=');
		FUZZ_CHECK(eq != NULL && strchr(eq + 1, '=') == NULL);
		*eq = '\0';
		check_encoding(p, strlen(p), 0, dec);
		check_encoding(eq + 1, strlen(eq + 1), 0, dec);
		if (prev != NULL) {
			c = strcmp(prev, p);
			FUZZ_CHECK(c < 0 || (c == 0 && strcmp(prev +
			    strlen(prev) + 1, eq + 1) <= 0));
		}
		prev = p;
		if (amp == NULL)
			break;
	}
	free(dec);
	free(copy);
}

/* A canonical query string is its own canonical form. */
static void
check_query_fixed_point(const struct sigv4_request *req, const char *q)
{
	struct sigv4_request again = *req;
	struct strbuf out = STRBUF_INIT, sh = STRBUF_INIT;
	struct errbuf eb;
	char *l1, *l2;

	again.query = q;
	errbuf_clear(&eb);
	FUZZ_CHECK(sigv4_canonical_request(&again, &out, &sh, &eb) == 0);
	l1 = strchr(out.buf, '\n') + 1;
	l2 = strchr(l1, '\n') + 1;
	FUZZ_CHECK(strncmp(l2, q, strlen(q)) == 0 && l2[strlen(q)] == '\n');
	strbuf_release(&out);
	strbuf_release(&sh);
}

static size_t
distinct_names(const struct sigv4_request *req)
{
	size_t i, j, n = 0;

	for (i = 0; i < req->nheaders; i++) {
		for (j = 0; j < i; j++)
			if (strcasecmp(req->headers[i].name,
			    req->headers[j].name) == 0)
				break;
		n += j == i;
	}
	return n;
}

static void
check_headers(char **lines, size_t nh, const char *signed_list)
{
	struct strbuf list = STRBUF_INIT;
	const char *prev = NULL, *v;
	char *colon, *p;
	size_t i;

	for (i = 0; i < nh; i++) {
		colon = strchr(lines[i], ':');
		FUZZ_CHECK(colon != NULL && colon > lines[i]);
		*colon = '\0';
		for (p = lines[i]; *p != '\0'; p++)
			FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'));
		FUZZ_CHECK(prev == NULL || strcmp(prev, lines[i]) < 0);
		prev = lines[i];
		v = colon + 1;
		FUZZ_CHECK(strpbrk(v, "\t\r\n") == NULL);
		FUZZ_CHECK(strstr(v, "  ") == NULL);
		strbuf_addf(&list, "%s%s", i ? ";" : "", lines[i]);
	}
	FUZZ_CHECK(strcmp(list.len ? list.buf : "", signed_list) == 0);
	strbuf_release(&list);
}

static void
check_canonical(const struct sigv4_request *req, const char *creq,
    const char *signed_list)
{
	char *copy = strdup(creq), **lines, *dec;
	size_t max = req->nheaders + 8, n, nuniq = distinct_names(req), dl;

	lines = calloc(max, sizeof(*lines));
	n = split_lines(copy, lines, max);
	FUZZ_CHECK(n == nuniq + 6);
	FUZZ_CHECK(strcmp(lines[0], req->method) == 0);
	dec = malloc(strlen(lines[1]) + 1);
	dl = check_encoding(lines[1], strlen(lines[1]), 1, dec);
	FUZZ_CHECK(dl == strlen(req->path) && memcmp(dec, req->path, dl) == 0);
	free(dec);
	check_query(lines[2]);
	check_headers(lines + 3, nuniq, signed_list);
	FUZZ_CHECK(lines[3 + nuniq][0] == '\0');
	FUZZ_CHECK(strcmp(lines[4 + nuniq], signed_list) == 0);
	FUZZ_CHECK(strcmp(lines[5 + nuniq], req->payload_hash) == 0);
	if (lines[2][0] != '\0')
		check_query_fixed_point(req, lines[2]);
	free(lines);
	free(copy);
}

static void
fuzz_canonical(const uint8_t *data, size_t size)
{
	char *buf = fuzz_cstr(data, size), *field[MAX_FIELDS], *p;
	struct sigv4_header hdrs[(MAX_FIELDS - 4) / 2];
	struct sigv4_request req;
	struct strbuf out = STRBUF_INIT, sh = STRBUF_INIT;
	struct errbuf eb;
	size_t nf = 0, i, sl;
	int rc;

	for (p = buf; nf < MAX_FIELDS && p <= buf + size; p += strlen(p) + 1)
		field[nf++] = p;
	memset(&req, 0, sizeof(req));
	req.method = nf > 0 ? field[0] : NULL;
	req.path = nf > 1 ? field[1] : NULL;
	req.query = nf > 2 ? field[2] : NULL;
	req.payload_hash = nf > 3 ? field[3] : NULL;
	for (i = 4; i < nf; i += 2) {
		hdrs[req.nheaders].name = field[i];
		hdrs[req.nheaders++].value = i + 1 < nf ? field[i + 1] : NULL;
	}
	req.headers = hdrs;

	strbuf_adds(&out, SENTINEL);
	strbuf_adds(&sh, SENTINEL);
	sl = strlen(SENTINEL);
	errbuf_clear(&eb);
	rc = sigv4_canonical_request(&req, &out, &sh, &eb);
	FUZZ_CHECK(rc == 0 || rc == -1);
	FUZZ_CHECK(memcmp(out.buf, SENTINEL, sl) == 0);
	FUZZ_CHECK(memcmp(sh.buf, SENTINEL, sl) == 0);
	if (rc == -1) {
		FUZZ_CHECK(eb.kind == ERR_INTERNAL && eb.msg[0] != '\0');
		FUZZ_CHECK(out.len == sl && sh.len == sl);
	} else {
		FUZZ_CHECK(eb.kind == ERR_NONE);
		FUZZ_CHECK(strlen(out.buf) == out.len);
		check_canonical(&req, out.buf + sl, sh.buf + sl);
	}
	strbuf_release(&out);
	strbuf_release(&sh);
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_encode(data, size, 0);
	fuzz_encode(data, size, 1);
	fuzz_canonical(data, size);
	return 0;
}
