/*
 * sigv4: AWS Signature Version 4, header signing, S3 rules. See sigv4.h.
 * Pure functions: no clock, no I/O; the only library is libcrypto.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "errbuf.h"
#include "sigv4.h"
#include "strbuf.h"

#define SIGV4_ALGORITHM	"AWS4-HMAC-SHA256"

/* A header in canonical form: lower-cased name, raw value, given order. */
struct canon_header {
	char		*name;
	const char	*value;
	size_t		 order;
};

/* A query parameter, name and value both canonically encoded. */
struct canon_param {
	char	*name;
	char	*value;
};

static void
crypto_fail(void)
{
	static const char msg[] = "sigv4: libcrypto failed\n";

	/* As strbuf's out-of-memory: nothing sensible is left to do. */
	(void)!write(2, msg, sizeof(msg) - 1);
	abort();
}

static void
hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
    unsigned char mac[32])
{
	unsigned int maclen = 0;

	if (keylen > INT_MAX ||
	    HMAC(EVP_sha256(), key, (int)keylen, data, len, mac,
	    &maclen) == NULL || maclen != 32)
		crypto_fail();
}

void
sigv4_sha256_hex(const void *data, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		crypto_fail();
	hex_encode(md, sizeof(md), hex);
}

void
sigv4_format_date(time_t when, char amz_date[17])
{
	struct tm tm;

	amz_date[0] = '\0';
	if (gmtime_r(&when, &tm) == NULL ||
	    tm.tm_year < 0 - 1900 || tm.tm_year > 9999 - 1900)
		return;
	/* strftime's %Y does not pad years before 1000: check the length. */
	if (strftime(amz_date, 17, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_DATE_LEN)
		amz_date[0] = '\0';
}

/*
 * Character classes, by hand: <ctype.h> follows the locale, and the
 * signature must not.
 */
static int
is_alnum(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9');
}

static int
is_unreserved(int c)
{
	return is_alnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 9110 tchar: what a method or a header name is made of. */
static int
is_tchar(int c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static int
is_token(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!is_tchar((unsigned char)*s))
			return 0;
	return 1;
}

/* Header white space, CR and LF included for obs-folded values. */
static int
is_lws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
to_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

void
sigv4_uri_encode(struct strbuf *out, const char *s, size_t len,
    int keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";
	char pct[3] = { '%', 0, 0 };
	size_t i;
	int c;

	strbuf_grow(out, len);
	for (i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (is_unreserved(c) || (c == '/' && keep_slash))
			strbuf_addch(out, c);
		else {
			pct[1] = digits[c >> 4];
			pct[2] = digits[c & 15];
			strbuf_add(out, pct, sizeof(pct));
		}
	}
}

/*
 * One query name or value, len bytes at s, decoded then encoded again, as
 * a new string. '+' is a plus sign: S3 keys are sent with %20 for spaces.
 */
static char *
canonical_component(const char *s, size_t len, struct errbuf *eb)
{
	struct strbuf raw = STRBUF_INIT, enc = STRBUF_INIT;
	char *res = NULL;
	size_t i;
	int hi, lo;

	for (i = 0; i < len; i++) {
		if (s[i] != '%') {
			strbuf_addch(&raw, s[i]);
			continue;
		}
		if (len - i < 3) {
			errbuf_set(eb, ERR_INTERNAL, "query parameter '%.*s': "
			    "truncated %%-escape", (int)len, s);
			goto out;
		}
		if ((hi = hex_value((unsigned char)s[i + 1])) == -1 ||
		    (lo = hex_value((unsigned char)s[i + 2])) == -1) {
			errbuf_set(eb, ERR_INTERNAL, "query parameter '%.*s': "
			    "bad %%-escape", (int)len, s);
			goto out;
		}
		strbuf_addch(&raw, hi << 4 | lo);
		i += 2;
	}
	sigv4_uri_encode(&enc, raw.buf, raw.len, 0);
	res = strbuf_detach(&enc, NULL);
 out:
	strbuf_release(&raw);
	strbuf_release(&enc);
	return res;
}

static int
param_cmp(const void *a, const void *b)
{
	const struct canon_param *pa = a, *pb = b;
	int c;

	if ((c = strcmp(pa->name, pb->name)) != 0)
		return c;
	return strcmp(pa->value, pb->value);
}

/* Split "name=value" (len bytes at s) into *param, both made canonical. */
static int
canonical_param(const char *s, size_t len, struct canon_param *param,
    struct errbuf *eb)
{
	const char *eq = memchr(s, '=', len);
	size_t nlen = eq != NULL ? (size_t)(eq - s) : len;

	param->value = NULL;
	if ((param->name = canonical_component(s, nlen, eb)) == NULL)
		return -1;
	if (eq == NULL)
		param->value = xstrdup("");
	else
		param->value = canonical_component(eq + 1, len - nlen - 1, eb);
	return param->value != NULL ? 0 : -1;
}

/* Append the canonical query string: parameters re-encoded and sorted. */
static int
add_canonical_query(struct strbuf *out, const char *query, struct errbuf *eb)
{
	struct canon_param *params = NULL;
	const char *p, *end;
	size_t n = 0, max = 1, i;
	int rc = -1;

	if (query == NULL || *query == '\0')
		return 0;
	if (*query == '?') {
		errbuf_set(eb, ERR_INTERNAL, "query '%s': leading '?'", query);
		return -1;
	}
	for (p = query; *p != '\0'; p++)
		max += *p == '&';
	params = xcalloc(max, sizeof(*params));
	for (p = query; ; p = end + 1) {
		if ((end = strchr(p, '&')) == NULL)
			end = p + strlen(p);
		if (end > p && canonical_param(p, (size_t)(end - p),
		    &params[n++], eb) == -1)
			goto out;
		if (*end == '\0')
			break;
	}
	qsort(params, n, sizeof(*params), param_cmp);
	for (i = 0; i < n; i++)
		strbuf_addf(out, "%s%s=%s", i ? "&" : "", params[i].name,
		    params[i].value);
	rc = 0;
 out:
	for (i = 0; i < n; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
	return rc;
}

static int
header_cmp(const void *a, const void *b)
{
	const struct canon_header *ha = a, *hb = b;
	int c;

	if ((c = strcmp(ha->name, hb->name)) != 0)
		return c;
	/* Keep repeated names in the order given: qsort is not stable. */
	return (ha->order > hb->order) - (ha->order < hb->order);
}

/* Append v trimmed, with each inner run of white space made one space. */
static void
add_trimmed(struct strbuf *out, const char *v)
{
	size_t start = out->len;
	int space = 0;

	for (; *v != '\0'; v++) {
		if (is_lws((unsigned char)*v)) {
			space = 1;
			continue;
		}
		if (space && out->len > start)
			strbuf_addch(out, ' ');
		space = 0;
		strbuf_addch(out, *v);
	}
}

/* Check the headers and copy them into hs, names lower-cased. */
static int
collect_headers(const struct sigv4_request *req, struct canon_header *hs,
    struct errbuf *eb)
{
	const struct sigv4_header *h;
	size_t i;
	char *p;

	for (i = 0; i < req->nheaders; i++) {
		h = &req->headers[i];
		if (!is_token(h->name)) {
			errbuf_set(eb, ERR_INTERNAL, "header name '%s' is "
			    "not a token", h->name ? h->name : "(null)");
			return -1;
		}
		if (h->value == NULL) {
			errbuf_set(eb, ERR_INTERNAL, "header '%s' has no value",
			    h->name);
			return -1;
		}
		hs[i].name = xstrdup(h->name);
		for (p = hs[i].name; *p != '\0'; p++)
			*p = (char)to_lower((unsigned char)*p);
		hs[i].value = h->value;
		hs[i].order = i;
	}
	return 0;
}

/*
 * Append the canonical headers ("name:value\n" each, values of a repeated
 * name joined with ',') to out and the signed-header list to signed.
 */
static int
add_canonical_headers(struct strbuf *out, struct strbuf *signed_headers,
    const struct sigv4_request *req, struct errbuf *eb)
{
	struct canon_header *hs;
	size_t i;
	int rc = -1;

	hs = xcalloc(req->nheaders, sizeof(*hs));
	if (collect_headers(req, hs, eb) == -1)
		goto out;
	qsort(hs, req->nheaders, sizeof(*hs), header_cmp);
	for (i = 0; i < req->nheaders; i++) {
		if (i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0)
			strbuf_addch(out, ',');
		else {
			if (i > 0)
				strbuf_addch(out, '\n');
			strbuf_addf(out, "%s:", hs[i].name);
			strbuf_addf(signed_headers, "%s%s", i ? ";" : "",
			    hs[i].name);
		}
		add_trimmed(out, hs[i].value);
	}
	if (req->nheaders > 0)
		strbuf_addch(out, '\n');
	rc = 0;
 out:
	for (i = 0; i < req->nheaders; i++)
		free(hs[i].name);
	free(hs);
	return rc;
}

/* The parts of req that are not headers or query: method, path, hash. */
static int
check_request(const struct sigv4_request *req, struct errbuf *eb)
{
	const char *p;

	if (req == NULL) {
		errbuf_set(eb, ERR_INTERNAL, "sigv4: no request");
		return -1;
	}
	if (!is_token(req->method)) {
		errbuf_set(eb, ERR_INTERNAL, "method '%s' is not a token",
		    req->method ? req->method : "(null)");
		return -1;
	}
	if (req->path == NULL || req->path[0] != '/') {
		errbuf_set(eb, ERR_INTERNAL, "path '%s' does not start "
		    "with '/'", req->path ? req->path : "(null)");
		return -1;
	}
	if (req->headers == NULL && req->nheaders > 0) {
		errbuf_set(eb, ERR_INTERNAL, "sigv4: %zu headers at NULL",
		    req->nheaders);
		return -1;
	}
	p = req->payload_hash;
	if (p == NULL || *p == '\0') {
		errbuf_set(eb, ERR_INTERNAL, "sigv4: no payload hash");
		return -1;
	}
	for (; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
			errbuf_set(eb, ERR_INTERNAL, "payload hash '%s' has "
			    "a space or control byte", req->payload_hash);
			return -1;
		}
	}
	return 0;
}

int
sigv4_canonical_request(const struct sigv4_request *req, struct strbuf *out,
    struct strbuf *signed_headers, struct errbuf *eb)
{
	struct strbuf creq = STRBUF_INIT, shdr = STRBUF_INIT;
	int rc = -1;

	if (check_request(req, eb) == -1)
		goto out;
	strbuf_addf(&creq, "%s\n", req->method);
	sigv4_uri_encode(&creq, req->path, strlen(req->path), 1);
	strbuf_addch(&creq, '\n');
	if (add_canonical_query(&creq, req->query, eb) == -1)
		goto out;
	strbuf_addch(&creq, '\n');
	if (add_canonical_headers(&creq, &shdr, req, eb) == -1)
		goto out;
	strbuf_addf(&creq, "\n%s\n%s", shdr.buf, req->payload_hash);
	strbuf_add(out, creq.buf, creq.len);
	strbuf_add(signed_headers, shdr.buf, shdr.len);
	rc = 0;
 out:
	strbuf_release(&creq);
	strbuf_release(&shdr);
	return rc;
}

/* "<date8>/<region>/<service>/aws4_request" */
static void
add_scope(struct strbuf *out, const char *amz_date, const char *region,
    const char *service)
{
	strbuf_addf(out, "%.8s/%s/%s/aws4_request", amz_date, region, service);
}

void
sigv4_string_to_sign(const char *amz_date, const char *region,
    const char *service, const char *canonical_request, struct strbuf *out)
{
	char hash[65];

	sigv4_sha256_hex(canonical_request, strlen(canonical_request), hash);
	strbuf_addf(out, SIGV4_ALGORITHM "\n%s\n", amz_date);
	add_scope(out, amz_date, region, service);
	strbuf_addf(out, "\n%s", hash);
}

void
sigv4_signing_key(const char *secret_key, const char *date8,
    const char *region, const char *service, unsigned char key[32])
{
	struct strbuf k_secret = STRBUF_INIT;
	unsigned char k_date[32], k_region[32], k_service[32];

	strbuf_addf(&k_secret, "AWS4%s", secret_key);
	hmac_sha256(k_secret.buf, k_secret.len, date8, strnlen(date8, 8),
	    k_date);
	hmac_sha256(k_date, sizeof(k_date), region, strlen(region), k_region);
	hmac_sha256(k_region, sizeof(k_region), service, strlen(service),
	    k_service);
	hmac_sha256(k_service, sizeof(k_service), "aws4_request",
	    strlen("aws4_request"), key);
	strbuf_wipe(&k_secret);
	OPENSSL_cleanse(k_date, sizeof(k_date));
	OPENSSL_cleanse(k_region, sizeof(k_region));
	OPENSSL_cleanse(k_service, sizeof(k_service));
}

void
sigv4_signature(const unsigned char key[32], const char *string_to_sign,
    char hex[65])
{
	unsigned char mac[32];

	hmac_sha256(key, 32, string_to_sign, strlen(string_to_sign), mac);
	hex_encode(mac, sizeof(mac), hex);
}

/* Does s hold a control byte or one of the bytes in bad? */
static int
has_byte_of(const char *s, const char *bad)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || (unsigned char)*s == 0x7f ||
		    strchr(bad, *s) != NULL)
			return 1;
	return 0;
}

static int
check_creds(const struct sigv4_creds *creds, struct errbuf *eb)
{
	if (creds == NULL || creds->access_key == NULL ||
	    creds->access_key[0] == '\0') {
		errbuf_set(eb, ERR_AUTH, "no access key");
		return -1;
	}
	if (has_byte_of(creds->access_key, " /,")) {
		errbuf_set(eb, ERR_AUTH, "access key has a space, control "
		    "byte, '/' or ','");
		return -1;
	}
	if (creds->secret_key == NULL || creds->secret_key[0] == '\0') {
		errbuf_set(eb, ERR_AUTH, "no secret key");
		return -1;
	}
	return 0;
}

static int
check_date(const char *amz_date, struct errbuf *eb)
{
	size_t i;
	int ok;

	ok = amz_date != NULL && strlen(amz_date) == SIGV4_DATE_LEN;
	for (i = 0; ok && i < SIGV4_DATE_LEN; i++) {
		if (i == 8)
			ok = amz_date[i] == 'T';
		else if (i == 15)
			ok = amz_date[i] == 'Z';
		else
			ok = amz_date[i] >= '0' && amz_date[i] <= '9';
	}
	if (!ok)
		errbuf_set(eb, ERR_INTERNAL, "amz date '%s' is not "
		    "YYYYMMDDTHHMMSSZ", amz_date ? amz_date : "(null)");
	return ok ? 0 : -1;
}

static int
check_scope_part(const char *what, const char *s, struct errbuf *eb)
{
	if (s == NULL || *s == '\0' || has_byte_of(s, " /")) {
		errbuf_set(eb, ERR_CONFIG, "%s '%s' is empty or has a space, "
		    "control byte or '/'", what, s ? s : "(null)");
		return -1;
	}
	return 0;
}

static int
name_equals(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++)
		if (to_lower((unsigned char)*a) != to_lower((unsigned char)*b))
			return 0;
	return *a == *b;
}

/* Is v, without leading and trailing white space, exactly want? */
static int
value_equals(const char *v, const char *want)
{
	size_t len, wlen = strlen(want);

	while (is_lws((unsigned char)*v))
		v++;
	len = strlen(v);
	while (len > 0 && is_lws((unsigned char)v[len - 1]))
		len--;
	return len == wlen && memcmp(v, want, len) == 0;
}

/*
 * The header the signer relies on the caller for: there once, and equal
 * to want unless want is NULL.
 */
static int
check_header(const struct sigv4_request *req, const char *name,
    const char *want, struct errbuf *eb)
{
	const char *value = NULL;
	size_t i, n = 0;

	for (i = 0; i < req->nheaders; i++) {
		if (name_equals(req->headers[i].name, name)) {
			value = req->headers[i].value;
			n++;
		}
	}
	if (n != 1) {
		errbuf_set(eb, ERR_INTERNAL, "sigv4: header '%s' given %zu "
		    "times, not once", name, n);
		return -1;
	}
	if (want != NULL && !value_equals(value, want)) {
		errbuf_set(eb, ERR_INTERNAL, "sigv4: header '%s' does not "
		    "match what is signed", name);
		return -1;
	}
	return 0;
}

/* The arguments that sigv4_canonical_request() does not check. */
static int
check_auth_args(const struct sigv4_request *req,
    const struct sigv4_creds *creds, const char *amz_date,
    const char *region, const char *service, struct errbuf *eb)
{
	if (check_creds(creds, eb) == -1 || check_date(amz_date, eb) == -1 ||
	    check_scope_part("region", region, eb) == -1 ||
	    check_scope_part("service", service, eb) == -1)
		return -1;
	if (check_header(req, "host", NULL, eb) == -1 ||
	    check_header(req, "x-amz-date", amz_date, eb) == -1)
		return -1;
	if (creds->session_token != NULL &&
	    check_header(req, "x-amz-security-token", creds->session_token,
	    eb) == -1)
		return -1;
	if (strcmp(service, "s3") == 0 &&
	    check_header(req, "x-amz-content-sha256", req->payload_hash,
	    eb) == -1)
		return -1;
	return 0;
}

int
sigv4_authorization(const struct sigv4_request *req,
    const struct sigv4_creds *creds, const char *amz_date,
    const char *region, const char *service, char **authorization,
    struct errbuf *eb)
{
	struct strbuf creq = STRBUF_INIT, signed_headers = STRBUF_INIT;
	struct strbuf sts = STRBUF_INIT, auth = STRBUF_INIT;
	unsigned char key[32];
	char signature[65];
	int rc = -1;

	/* Stage 1 checks req first, so the header checks can rely on it. */
	if (sigv4_canonical_request(req, &creq, &signed_headers, eb) == -1 ||
	    check_auth_args(req, creds, amz_date, region, service, eb) == -1)
		goto out;
	sigv4_string_to_sign(amz_date, region, service, creq.buf, &sts);
	sigv4_signing_key(creds->secret_key, amz_date, region, service, key);
	sigv4_signature(key, sts.buf, signature);
	OPENSSL_cleanse(key, sizeof(key));

	strbuf_addf(&auth, SIGV4_ALGORITHM " Credential=%s/",
	    creds->access_key);
	add_scope(&auth, amz_date, region, service);
	strbuf_addf(&auth, ", SignedHeaders=%s, Signature=%s",
	    signed_headers.buf, signature);
	*authorization = strbuf_detach(&auth, NULL);
	rc = 0;
 out:
	strbuf_release(&creq);
	strbuf_release(&signed_headers);
	strbuf_release(&sts);
	strbuf_release(&auth);
	return rc;
}
