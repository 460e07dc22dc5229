/*
 * creds: the AWS credential chain (see include/creds.h for the sources and
 * the variables). Parsers first, then one function per source, then the
 * cache that decides when to ask.
 */
#include <errno.h>
#include <malloc.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <expat.h>
#include <openssl/crypto.h>

#include "creds.h"
#include "http.h"
#include "log.h"
#include "strbuf.h"

#define nitems(a)		(sizeof(a) / sizeof((a)[0]))

#define CREDS_MAX_FILE		(1024 * 1024)	/* a shared file */
#define CREDS_MAX_TOKEN		(64 * 1024)	/* a token file */
#define CREDS_MAX_FIELD		(16 * 1024)	/* one key, secret or token */
#define CREDS_MAX_BODY		(64 * 1024)	/* an HTTP answer */
/* Link-local endpoints answer at once or not at all: do not hang a run. */
#define CREDS_LOCAL_CONNECT_MS	1000
#define CREDS_LOCAL_TIMEOUT_MS	5000
#define CREDS_STS_CONNECT_MS	5000
#define CREDS_STS_TIMEOUT_MS	20000
#define CREDS_ATTEMPTS		3	/* ECS and STS; IMDS gets one */

#define IMDS_DEFAULT_ENDPOINT	"http://169.254.169.254"
#define IMDS_TOKEN_TTL		21600
#define IMDS_CREDS_PATH		"/latest/meta-data/iam/security-credentials/"
#define ECS_HOST		"http://169.254.170.2"

struct creds_provider {
	creds_getenv_fn	 getenv_fn;
	struct http_pool *http;
	struct http_pool *own_http;	/* made here when none was given */
	struct creds	 cur;		/* access_key == NULL: none yet */
	int		 pinned;	/* index in sources[], -1: none */
	time_t		 retry_after;	/* ask no source before this */
	struct errbuf	 err;		/* why the last attempt failed */
	int		 imds_dead;	/* IMDS did not answer: skip it */
	int		 no_answer;	/* last transfer got no answer */
	char		*imds_token;
	time_t		 imds_token_expires;
};

/* A source: 1 with *out filled, 0 when not configured, -1 with eb. */
typedef int (*source_fn)(struct creds_provider *p, time_t now,
    struct creds *out, struct strbuf *tried, struct errbuf *eb);

static int	src_env(struct creds_provider *, time_t, struct creds *,
		    struct strbuf *, struct errbuf *);
static int	src_web_identity(struct creds_provider *, time_t,
		    struct creds *, struct strbuf *, struct errbuf *);
static int	src_profile(struct creds_provider *, time_t, struct creds *,
		    struct strbuf *, struct errbuf *);
static int	src_ecs(struct creds_provider *, time_t, struct creds *,
		    struct strbuf *, struct errbuf *);
static int	src_imds(struct creds_provider *, time_t, struct creds *,
		    struct strbuf *, struct errbuf *);

static const struct creds_source {
	const char	*name;
	source_fn	 fetch;
	int		 last_resort;	/* a failure means "not found" */
} sources[] = {
	{ "env",		src_env,		0 },
	{ "web-identity",	src_web_identity,	0 },
	{ "profile",		src_profile,		0 },
	{ "ecs",		src_ecs,		0 },
	{ "imds",		src_imds,		1 },
};

/* Small helpers */

static void
wipe_free(char *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* A variable's value; an empty one counts as unset. */
static const char *
env(creds_getenv_fn fn, const char *name)
{
	const char *v = fn(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static void
trim(const char **b, const char **e)
{
	while (*b < *e && is_blank(**b))
		(*b)++;
	while (*e > *b && is_blank((*e)[-1]))
		(*e)--;
}

/* Drop trailing blanks and newlines (token files end with one). */
static void
strbuf_rtrim(struct strbuf *sb)
{
	while (sb->len > 0 && (is_blank(sb->buf[sb->len - 1]) ||
	    sb->buf[sb->len - 1] == '\n'))
		sb->buf[--sb->len] = '\0';
}

/* Printable ASCII without blanks: safe in a header, never ambiguous. */
static int
is_token_text(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

static int
check_field(const char *what, const char *v, struct errbuf *eb)
{
	size_t len = v != NULL ? strlen(v) : 0;

	if (len == 0) {
		errbuf_set(eb, ERR_AUTH, "no %s", what);
		return -1;
	}
	if (len > CREDS_MAX_FIELD) {
		errbuf_set(eb, ERR_AUTH, "%s is too long", what);
		return -1;
	}
	if (!is_token_text(v, len)) {
		errbuf_set(eb, ERR_AUTH, "%s has a blank, control or "
		    "non-ASCII byte", what);
		return -1;
	}
	return 0;
}

/* Check and copy the fields every source yields into *c. */
static int
creds_fill(struct creds *c, const char *ak, const char *sk, const char *tok,
    const char *expiration, struct errbuf *eb)
{
	time_t expires = 0;

	if (check_field("access key id", ak, eb) == -1 ||
	    check_field("secret access key", sk, eb) == -1)
		return -1;
	if (tok != NULL && *tok == '\0')
		tok = NULL;
	if (tok != NULL && check_field("session token", tok, eb) == -1)
		return -1;
	if (expiration != NULL && *expiration != '\0' &&
	    creds_parse_time(expiration, &expires) == -1) {
		errbuf_set(eb, ERR_AUTH, "expiration '%.64s' is not an "
		    "ISO-8601 time", expiration);
		return -1;
	}
	memset(c, 0, sizeof(*c));
	c->access_key = xstrdup(ak);
	c->secret_key = xstrdup(sk);
	c->session_token = tok != NULL ? xstrdup(tok) : NULL;
	c->expires = expires;
	return 0;
}

static void
creds_copy(struct creds *dst, const struct creds *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->access_key = xstrdup(src->access_key);
	dst->secret_key = xstrdup(src->secret_key);
	if (src->session_token != NULL)
		dst->session_token = xstrdup(src->session_token);
	dst->expires = src->expires;
	memcpy(dst->source, src->source, sizeof(dst->source));
}

void
creds_release(struct creds *c)
{
	if (c == NULL)
		return;
	wipe_free(c->access_key);
	wipe_free(c->secret_key);
	wipe_free(c->session_token);
	memset(c, 0, sizeof(*c));
}

/* ISO-8601 times */

static const char *
parse_digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return NULL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return s + n;
}

static int
days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* "Z", "+hh:mm", "-hhmm": the offset east of UTC in seconds. */
static const char *
parse_zone(const char *s, long *offset)
{
	int sign, oh, om;

	if (*s == 'Z' || *s == 'z') {
		*offset = 0;
		return s + 1;
	}
	if (*s != '+' && *s != '-')
		return NULL;
	sign = *s == '-' ? -1 : 1;
	if ((s = parse_digits(s + 1, 2, &oh)) == NULL)
		return NULL;
	if (*s == ':')
		s++;
	if ((s = parse_digits(s, 2, &om)) == NULL || oh > 23 || om > 59)
		return NULL;
	*offset = sign * (oh * 3600L + om * 60L);
	return s;
}

int
creds_parse_time(const char *s, time_t *out)
{
	struct tm tm;
	int y, mo, d, h, mi, sec;
	long offset;
	time_t t;

	if ((s = parse_digits(s, 4, &y)) == NULL || *s++ != '-' ||
	    (s = parse_digits(s, 2, &mo)) == NULL || *s++ != '-' ||
	    (s = parse_digits(s, 2, &d)) == NULL ||
	    (*s != 'T' && *s != 't' && *s != ' ') ||
	    (s = parse_digits(s + 1, 2, &h)) == NULL || *s++ != ':' ||
	    (s = parse_digits(s, 2, &mi)) == NULL || *s++ != ':' ||
	    (s = parse_digits(s, 2, &sec)) == NULL)
		return -1;
	if (*s == '.' || *s == ',') {
		if (s[1] < '0' || s[1] > '9')
			return -1;
		for (s++; *s >= '0' && *s <= '9'; s++)
			;
	}
	if ((s = parse_zone(s, &offset)) == NULL || *s != '\0')
		return -1;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*out = t - offset;
	return 0;
}

/* The INI dialect of the shared files */

struct ini_state {
	const char	*section;
	const char *const *keys;
	char		**values;
	size_t		 nkeys;
	int		 lineno;
	int		 in_any;	/* a header was seen */
	int		 in_wanted;	/* the current section is the one */
	int		 after_key;	/* indented lines continue a setting */
	int		 found;
};

/* The header [h, he) names want; runs of blanks match one space. */
static int
ini_section_eq(const char *h, const char *he, const char *want)
{
	while (h < he) {
		if (is_blank(*h)) {
			while (h < he && is_blank(*h))
				h++;
			if (*want != ' ')
				return 0;
			want++;
			continue;
		}
		if (*want == '\0' || *want != *h)
			return 0;
		want++;
		h++;
	}
	return *want == '\0';
}

static int
ini_header(struct ini_state *st, const char *b, const char *e,
    struct errbuf *eb)
{
	const char *close = NULL, *q, *rest;

	for (q = b; q < e; q++)
		if (*q == ']')
			close = q;
	if (close == NULL) {
		errbuf_set(eb, ERR_CONFIG, "line %d: a section header "
		    "without ']'", st->lineno);
		return -1;
	}
	for (rest = close + 1; rest < e && is_blank(*rest); rest++)
		;
	if (rest < e && *rest != '#' && *rest != ';') {
		errbuf_set(eb, ERR_CONFIG, "line %d: text after a section "
		    "header", st->lineno);
		return -1;
	}
	b++;
	trim(&b, &close);
	if (b == close) {
		errbuf_set(eb, ERR_CONFIG, "line %d: an empty section name",
		    st->lineno);
		return -1;
	}
	st->in_any = 1;
	st->in_wanted = ini_section_eq(b, close, st->section);
	st->found |= st->in_wanted;
	st->after_key = 0;
	return 0;
}

static void
ini_store(struct ini_state *st, const char *nb, const char *ne,
    const char *vb, const char *ve)
{
	size_t i, nlen = (size_t)(ne - nb);

	for (i = 0; i < st->nkeys; i++) {
		if (strlen(st->keys[i]) != nlen ||
		    strncasecmp(st->keys[i], nb, nlen) != 0)
			continue;
		wipe_free(st->values[i]);
		st->values[i] = xstrndup(vb, (size_t)(ve - vb));
	}
}

static int
ini_setting(struct ini_state *st, const char *b, const char *e,
    struct errbuf *eb)
{
	const char *eq, *nb = b, *ne, *vb, *ve = e, *q;

	if (!st->in_any) {
		errbuf_set(eb, ERR_CONFIG, "line %d: a setting before any "
		    "[section]", st->lineno);
		return -1;
	}
	if ((eq = memchr(b, '=', (size_t)(e - b))) == NULL) {
		errbuf_set(eb, ERR_CONFIG, "line %d: neither 'name = value' "
		    "nor '[section]'", st->lineno);
		return -1;
	}
	ne = eq;
	trim(&nb, &ne);
	if (nb == ne) {
		errbuf_set(eb, ERR_CONFIG, "line %d: a setting without a "
		    "name", st->lineno);
		return -1;
	}
	/* Keys and tokens hold no blanks: " #" can only start a comment. */
	for (q = eq + 1; q < ve; q++)
		if ((*q == '#' || *q == ';') && is_blank(q[-1]))
			ve = q;
	vb = eq + 1;
	trim(&vb, &ve);
	st->after_key = 1;
	if (st->in_wanted)
		ini_store(st, nb, ne, vb, ve);
	return 0;
}

static int
ini_line(struct ini_state *st, const char *b, const char *e,
    struct errbuf *eb)
{
	int indented = b < e && is_blank(*b);

	trim(&b, &e);
	if (b == e || *b == '#' || *b == ';')
		return 0;
	if (indented && st->after_key)
		return 0;
	if (*b == '[')
		return ini_header(st, b, e, eb);
	return ini_setting(st, b, e, eb);
}

static void
values_wipe(char **values, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		wipe_free(values[i]);
		values[i] = NULL;
	}
}

int
creds_parse_ini(const char *text, size_t len, const char *section,
    const char *const *keys, char **values, size_t nkeys,
    struct errbuf *eb)
{
	struct ini_state st;
	const char *p = text, *end = text + len, *nl;

	memset(&st, 0, sizeof(st));
	st.section = section;
	st.keys = keys;
	st.values = values;
	st.nkeys = nkeys;
	memset(values, 0, nkeys * sizeof(*values));
	if (len > 0 && memchr(text, '\0', len) != NULL) {
		errbuf_set(eb, ERR_CONFIG, "a NUL byte in the text");
		return -1;
	}
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		st.lineno++;
		if (ini_line(&st, p, nl != NULL ? nl : end, eb) == -1) {
			values_wipe(values, nkeys);
			return -1;
		}
		if (nl == NULL)
			break;
	}
	if (!st.found)
		values_wipe(values, nkeys);
	return st.found;
}

/* JSON answers of ECS and IMDS */

static const char *
json_str(const cJSON *obj, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* cJSON frees without wiping: wipe every string of the tree first. */
static void
json_wipe(cJSON *item)
{
	for (; item != NULL; item = item->next) {
		if (item->valuestring != NULL)
			OPENSSL_cleanse(item->valuestring,
			    strlen(item->valuestring));
		json_wipe(item->child);
	}
}

int
creds_parse_json(const char *text, size_t len, struct creds *out,
    struct errbuf *eb)
{
	cJSON *root;
	const char *code, *msg;
	int rc = -1;

	root = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsObject(root)) {
		errbuf_set(eb, ERR_AUTH, "the answer is not a JSON object");
		goto out;
	}
	code = json_str(root, "Code");
	if (code != NULL && strcmp(code, "Success") != 0) {
		msg = json_str(root, "Message");
		errbuf_set(eb, ERR_AUTH, "the answer says %.64s: %.200s", code,
		    msg != NULL ? msg : "");
		goto out;
	}
	if (creds_fill(out, json_str(root, "AccessKeyId"),
	    json_str(root, "SecretAccessKey"), json_str(root, "Token"),
	    json_str(root, "Expiration"), eb) == -1)
		goto out;
	rc = 0;
 out:
	json_wipe(root);
	cJSON_Delete(root);
	return rc;
}

/* STS's XML answer */

enum { STS_AK, STS_SK, STS_TOKEN, STS_EXP, STS_CODE, STS_MSG, STS_NFIELDS };

#define STS_DEPTH	6

struct sts_parse {
	XML_Parser	 xp;
	int		 depth;
	int		 root;		/* 1: the answer, 2: ErrorResponse */
	int		 refused;	/* a DOCTYPE or an oversized text */
	char		 names[STS_DEPTH][48];
	struct strbuf	 text;
	char		*fields[STS_NFIELDS];
};

/* Expat's buffers hold the secret too: wipe whatever it frees. */
static void *
xml_malloc(size_t n)
{
	return malloc(n);
}

static void *
xml_realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(n);
	old = malloc_usable_size(p);
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	OPENSSL_cleanse(p, old);
	free(p);
	return q;
}

static void
xml_free(void *p)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

static const char *
xml_local_name(const char *name)
{
	const char *colon = strrchr(name, ':');

	return colon != NULL ? colon + 1 : name;
}

static void
text_clear(struct strbuf *sb)
{
	if (sb->alloc)
		OPENSSL_cleanse(sb->buf, sb->len);
	strbuf_reset(sb);
}

static void XMLCALL
sts_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct sts_parse *sp = arg;
	const char *local = xml_local_name(name);

	(void)attrs;
	if (sp->depth == 0) {
		if (strcmp(local, "AssumeRoleWithWebIdentityResponse") == 0)
			sp->root = 1;
		else if (strcmp(local, "ErrorResponse") == 0)
			sp->root = 2;
	}
	if (sp->depth < STS_DEPTH)
		snprintf(sp->names[sp->depth], sizeof(sp->names[0]), "%s",
		    local);
	sp->depth++;
	text_clear(&sp->text);
}

static int
sts_at(const struct sts_parse *sp, const char *a, const char *b)
{
	return strcmp(sp->names[1], a) == 0 &&
	    (b == NULL || strcmp(sp->names[2], b) == 0);
}

static int
sts_field(const struct sts_parse *sp)
{
	static const char *const names[] = { "AccessKeyId",
	    "SecretAccessKey", "SessionToken", "Expiration", "Code",
	    "Message" };
	const char *leaf;
	int i, first, last;

	if (sp->root == 1 && sp->depth == 3 &&
	    sts_at(sp, "AssumeRoleWithWebIdentityResult", "Credentials")) {
		leaf = sp->names[3];
		first = STS_AK;
		last = STS_EXP;
	} else if (sp->root == 2 && sp->depth == 2 &&
	    sts_at(sp, "Error", NULL)) {
		leaf = sp->names[2];
		first = STS_CODE;
		last = STS_MSG;
	} else
		return -1;
	for (i = first; i <= last; i++)
		if (strcmp(leaf, names[i]) == 0)
			return i;
	return -1;
}

static void XMLCALL
sts_end(void *arg, const XML_Char *name)
{
	struct sts_parse *sp = arg;
	int f;

	(void)name;
	sp->depth--;
	if ((f = sts_field(sp)) >= 0) {
		wipe_free(sp->fields[f]);
		sp->fields[f] = xstrndup(sp->text.buf, sp->text.len);
	}
	text_clear(&sp->text);
}

static void XMLCALL
sts_text(void *arg, const XML_Char *s, int len)
{
	struct sts_parse *sp = arg;

	if (sp->text.len + (size_t)len > CREDS_MAX_FIELD) {
		sp->refused = 1;
		XML_StopParser(sp->xp, XML_FALSE);
		return;
	}
	strbuf_add(&sp->text, s, (size_t)len);
}

static void XMLCALL
sts_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal)
{
	struct sts_parse *sp = arg;

	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal;
	sp->refused = 1;
	XML_StopParser(sp->xp, XML_FALSE);
}

static int
sts_result(struct sts_parse *sp, struct creds *out, struct errbuf *eb)
{
	char **f = sp->fields;

	if (sp->root == 2) {
		errbuf_set(eb, ERR_AUTH, "STS says %.64s: %.300s",
		    f[STS_CODE] != NULL ? f[STS_CODE] : "an error",
		    f[STS_MSG] != NULL ? f[STS_MSG] : "");
		return -1;
	}
	if (sp->root != 1) {
		errbuf_set(eb, ERR_AUTH, "the answer is not an "
		    "AssumeRoleWithWebIdentityResponse");
		return -1;
	}
	return creds_fill(out, f[STS_AK], f[STS_SK], f[STS_TOKEN],
	    f[STS_EXP], eb);
}

int
creds_parse_sts_xml(const char *text, size_t len, struct creds *out,
    struct errbuf *eb)
{
	static const XML_Memory_Handling_Suite mm = { xml_malloc, xml_realloc,
	    xml_free };
	struct sts_parse sp;
	int i, rc = -1;

	memset(&sp, 0, sizeof(sp));
	strbuf_init(&sp.text, 0);
	if (len > CREDS_MAX_BODY ||
	    (sp.xp = XML_ParserCreate_MM(NULL, &mm, NULL)) == NULL) {
		errbuf_set(eb, ERR_AUTH, "the answer is too big to parse");
		goto out;
	}
	XML_SetUserData(sp.xp, &sp);
	XML_SetElementHandler(sp.xp, sts_start, sts_end);
	XML_SetCharacterDataHandler(sp.xp, sts_text);
	XML_SetStartDoctypeDeclHandler(sp.xp, sts_doctype);
	if (XML_Parse(sp.xp, text, (int)len, XML_TRUE) != XML_STATUS_OK) {
		if (sp.refused)
			errbuf_set(eb, ERR_AUTH, "the answer has a DOCTYPE or "
			    "an oversized field");
		else
			errbuf_set(eb, ERR_AUTH, "the answer is not XML: line "
			    "%lu: %s", (unsigned long)
			    XML_GetCurrentLineNumber(sp.xp),
			    XML_ErrorString(XML_GetErrorCode(sp.xp)));
		goto out;
	}
	rc = sts_result(&sp, out, eb);
 out:
	if (sp.xp != NULL)
		XML_ParserFree(sp.xp);
	for (i = 0; i < STS_NFIELDS; i++)
		wipe_free(sp.fields[i]);
	strbuf_wipe(&sp.text);
	return rc;
}

/* HTTP */

static void
pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/*
 * The caller's pool when it is idle. Otherwise a pool of our own: driving
 * a busy pool would run other transfers' done callbacks from inside
 * creds_get(), which the S3 client calls while it queues a request.
 */
static struct http_pool *
creds_pool(struct creds_provider *p, struct errbuf *eb)
{
	if (p->http != NULL && http_pool_pending(p->http) == 0)
		return p->http;
	if (p->own_http == NULL)
		p->own_http = http_pool_new(2, eb);
	return p->own_http;
}

/*
 * One request, tried up to attempts times while it gets no answer, a 429
 * or a 5xx. 0 when an answer was read (check resp->status), -1 with eb
 * ("<what>: <reason>") when none was; p->no_answer says which.
 */
static int
creds_http(struct creds_provider *p, const struct http_request *req,
    struct http_response *resp, int attempts, const char *what,
    struct errbuf *eb)
{
	struct http_pool *pool;
	int i, rc = -1;

	p->no_answer = 0;
	if ((pool = creds_pool(p, eb)) == NULL)
		return -1;
	for (i = 0; i < attempts; i++) {
		if (i > 0)
			pause_ms(100L << i);
		rc = http_pool_do(pool, req, resp, eb);
		if (rc == -1 && resp->curl_code != 0)
			http_response_error(resp, eb, what);
		if (rc == 0 && resp->status != 429 && resp->status < 500)
			return 0;
		log_debug("credentials: %s: %s", what, rc == -1 ? eb->msg :
		    "a server error");
	}
	p->no_answer = rc == -1;
	return rc;
}

static int
creds_http_status(const struct http_response *resp, const char *what,
    struct errbuf *eb)
{
	if (resp->status == 200)
		return 0;
	errbuf_set(eb, ERR_AUTH, "%s: HTTP %ld", what, resp->status);
	eb->http_status = resp->status;
	return -1;
}

static void
creds_request(const struct creds_provider *p, struct http_request *req,
    const char *method, const char *url, const char **headers,
    size_t nheaders, int local)
{
	http_request_init(req);
	req->ca_bundle = env(p->getenv_fn, "AWS_CA_BUNDLE");
	req->method = method;
	req->url = url;
	req->headers = headers;
	req->nheaders = nheaders;
	req->max_body = CREDS_MAX_BODY;
	req->connect_timeout_ms = local ? CREDS_LOCAL_CONNECT_MS :
	    CREDS_STS_CONNECT_MS;
	req->timeout_ms = local ? CREDS_LOCAL_TIMEOUT_MS :
	    CREDS_STS_TIMEOUT_MS;
}

static char *
url_join(const char *base, const char *path)
{
	size_t blen = strlen(base);

	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	return xasprintf("%.*s%s", (int)blen, base, path);
}

/* Source 1: the environment */

static int
src_env(struct creds_provider *p, time_t now, struct creds *out,
    struct strbuf *tried, struct errbuf *eb)
{
	const char *ak = env(p->getenv_fn, "AWS_ACCESS_KEY_ID");
	const char *sk = env(p->getenv_fn, "AWS_SECRET_ACCESS_KEY");

	(void)now;
	if (ak == NULL && sk == NULL) {
		strbuf_adds(tried, "env (not set)");
		return 0;
	}
	if (ak == NULL || sk == NULL) {
		errbuf_set(eb, ERR_AUTH, "%s is set but %s is not",
		    ak ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
		    ak ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -1;
	}
	if (creds_fill(out, ak, sk, env(p->getenv_fn, "AWS_SESSION_TOKEN"),
	    NULL, eb) == -1)
		return -1;
	return 1;
}

/* Source 3 (before 2: web identity needs the profile's region) */

/* A shared file's path: the variable or the default, "~/" expanded. */
static char *
shared_path(creds_getenv_fn fn, const char *var, const char *dflt,
    struct errbuf *eb)
{
	const char *v = env(fn, var), *home;
	struct passwd pw, *res = NULL;
	char *buf = NULL, *path = NULL;

	if (v == NULL)
		v = dflt;
	if (v[0] != '~' || (v[1] != '/' && v[1] != '\0'))
		return xstrdup(v);
	if ((home = env(fn, "HOME")) == NULL) {
		buf = xmalloc(16384);
		if (getpwuid_r(getuid(), &pw, buf, 16384, &res) == 0 &&
		    res != NULL)
			home = pw.pw_dir;
	}
	if (home != NULL)
		path = xasprintf("%s%s", home, v + 1);
	else
		errbuf_set(eb, ERR_CONFIG, "%s: no HOME to expand '%s'", var,
		    v);
	free(buf);
	return path;
}

/* Keys of section in the file at path: 1 found, 0 no file or section. */
static int
ini_file(const char *path, const char *section, const char *const *keys,
    char **values, size_t nkeys, struct errbuf *eb)
{
	struct strbuf sb = STRBUF_INIT;
	int rc;

	if (strbuf_read_file(&sb, path, CREDS_MAX_FILE) == -1) {
		rc = errno == ENOENT || errno == ENOTDIR ? 0 : -1;
		if (rc == -1)
			errbuf_setsys(eb, ERR_CONFIG, "read '%s'", path);
		memset(values, 0, nkeys * sizeof(*values));
		strbuf_wipe(&sb);
		return rc;
	}
	rc = creds_parse_ini(sb.buf, sb.len, section, keys, values, nkeys,
	    eb);
	if (rc == -1)
		errbuf_prefix(eb, "'%s'", path);
	strbuf_wipe(&sb);
	return rc;
}

/* The config file names a profile "[profile NAME]", "default" "[default]". */
static int
config_file(const char *path, const char *profile, const char *const *keys,
    char **values, size_t nkeys, struct errbuf *eb)
{
	char *section;
	int rc;

	if (strcmp(profile, "default") == 0) {
		rc = ini_file(path, "default", keys, values, nkeys, eb);
		if (rc != 0)
			return rc;
	}
	section = xasprintf("profile %s", profile);
	rc = ini_file(path, section, keys, values, nkeys, eb);
	free(section);
	return rc;
}

int
creds_profile_region(creds_getenv_fn getenv_fn, char **region,
    struct errbuf *eb)
{
	static const char *const keys[] = { "region" };
	const char *profile = env(getenv_fn, "AWS_PROFILE");
	char *path, *value = NULL;
	int rc;

	if ((path = shared_path(getenv_fn, "AWS_CONFIG_FILE",
	    "~/.aws/config", eb)) == NULL)
		return -1;
	rc = config_file(path, profile != NULL ? profile : "default", keys,
	    &value, 1, eb);
	free(path);
	if (rc == -1)
		return -1;
	*region = value;
	return 0;
}

enum { PK_AK, PK_SK, PK_TOKEN, PK_ROLE_ARN, PK_PROCESS, PK_SSO_SESSION,
    PK_SSO_URL, PK_N };

static const char *const profile_keys[PK_N] = { "aws_access_key_id",
    "aws_secret_access_key", "aws_session_token", "role_arn",
    "credential_process", "sso_session", "sso_start_url" };

/*
 * Keys of the profile in one file: 1 with *out, 0 when the file has none
 * (*found set when it has the section), -1 with eb.
 */
static int
profile_in_file(const char *path, int config, const char *name,
    struct creds *out, int *found, struct errbuf *eb)
{
	char *v[PK_N];
	int i, rc;

	rc = config ? config_file(path, name, profile_keys, v, PK_N, eb) :
	    ini_file(path, name, profile_keys, v, PK_N, eb);
	if (rc <= 0)
		return rc;
	*found = 1;
	rc = 0;
	if (v[PK_AK] != NULL || v[PK_SK] != NULL) {
		rc = creds_fill(out, v[PK_AK], v[PK_SK], v[PK_TOKEN], NULL,
		    eb) == 0 ? 1 : -1;
		if (rc == -1)
			errbuf_prefix(eb, "profile '%s' in '%s'", name, path);
		goto out;
	}
	/* Not supported here: fail rather than take another identity. */
	for (i = PK_ROLE_ARN; i < PK_N; i++) {
		if (v[i] == NULL)
			continue;
		errbuf_set(eb, ERR_AUTH, "profile '%s' in '%s' uses '%s', "
		    "which s3-batch does not support: give it static keys",
		    name, path, profile_keys[i]);
		rc = -1;
		break;
	}
 out:
	values_wipe(v, PK_N);
	return rc;
}

static int
src_profile(struct creds_provider *p, time_t now, struct creds *out,
    struct strbuf *tried, struct errbuf *eb)
{
	const char *name = env(p->getenv_fn, "AWS_PROFILE");
	char *cpath = NULL, *fpath = NULL;
	int named = name != NULL, found = 0, rc = -1;

	(void)now;
	if (!named)
		name = "default";
	if ((cpath = shared_path(p->getenv_fn, "AWS_SHARED_CREDENTIALS_FILE",
	    "~/.aws/credentials", eb)) == NULL ||
	    (fpath = shared_path(p->getenv_fn, "AWS_CONFIG_FILE",
	    "~/.aws/config", eb)) == NULL)
		goto out;
	if ((rc = profile_in_file(cpath, 0, name, out, &found, eb)) != 0 ||
	    (rc = profile_in_file(fpath, 1, name, out, &found, eb)) != 0)
		goto out;
	if (named && !found) {
		errbuf_set(eb, ERR_AUTH, "AWS_PROFILE '%s' is in neither '%s' "
		    "nor '%s'", name, cpath, fpath);
		rc = -1;
		goto out;
	}
	strbuf_addf(tried, "profile '%s' (%s)", name,
	    found ? "no keys" : "not found");
 out:
	free(cpath);
	free(fpath);
	return rc;
}

/* Source 2: web identity through STS */

static void
form_add(struct strbuf *sb, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)value;

	if (sb->len > 0)
		strbuf_addch(sb, '&');
	strbuf_adds(sb, name);
	strbuf_addch(sb, '=');
	for (; *s != '\0'; s++) {
		if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || strchr("-_.~", *s) != NULL) {
			strbuf_addch(sb, *s);
			continue;
		}
		strbuf_addch(sb, '%');
		strbuf_addch(sb, hex[*s >> 4]);
		strbuf_addch(sb, hex[*s & 15]);
	}
}

/* AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else STS in the region. */
static char *
sts_endpoint(creds_getenv_fn fn, struct errbuf *eb)
{
	const char *v, *r;
	char *region = NULL, *url = NULL;

	if ((v = env(fn, "AWS_ENDPOINT_URL_STS")) != NULL ||
	    (v = env(fn, "AWS_ENDPOINT_URL")) != NULL)
		return url_join(v, "/");
	if ((r = env(fn, "AWS_REGION")) == NULL &&
	    (r = env(fn, "AWS_DEFAULT_REGION")) == NULL) {
		if (creds_profile_region(fn, &region, eb) == -1)
			return NULL;
		r = region != NULL ? region : "us-east-1";
	}
	if (strspn(r, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(r))
		errbuf_set(eb, ERR_CONFIG, "region '%s' is not a region name",
		    r);
	else
		url = xasprintf("https://sts.%s.amazonaws.com%s/", r,
		    strncmp(r, "cn-", 3) == 0 ? ".cn" : "");
	free(region);
	return url;
}

static int
sts_form(creds_getenv_fn fn, const char *arn, const char *token_file,
    struct strbuf *form, struct errbuf *eb)
{
	struct strbuf token = STRBUF_INIT;
	const char *session = env(fn, "AWS_ROLE_SESSION_NAME");
	char dflt[48];
	int rc = -1;

	/* Read at each fetch: kubelet rotates the file. */
	if (strbuf_read_file(&token, token_file, CREDS_MAX_TOKEN) == -1) {
		errbuf_setsys(eb, ERR_AUTH, "read AWS_WEB_IDENTITY_TOKEN_FILE "
		    "'%s'", token_file);
		goto out;
	}
	strbuf_rtrim(&token);
	if (token.len == 0 || strlen(token.buf) != token.len) {
		errbuf_set(eb, ERR_AUTH, "AWS_WEB_IDENTITY_TOKEN_FILE '%s' is "
		    "empty or binary", token_file);
		goto out;
	}
	if (session == NULL) {
		snprintf(dflt, sizeof(dflt), "s3-batch-%ld", (long)getpid());
		session = dflt;
	}
	form_add(form, "Action", "AssumeRoleWithWebIdentity");
	form_add(form, "Version", "2011-06-15");
	form_add(form, "RoleArn", arn);
	form_add(form, "RoleSessionName", session);
	form_add(form, "WebIdentityToken", token.buf);
	rc = 0;
 out:
	strbuf_wipe(&token);
	return rc;
}

/* STS said no: its XML Code and Message say why. */
static void
sts_refused(const struct http_response *resp, const char *what,
    struct errbuf *eb)
{
	struct creds unused;
	struct errbuf why;

	errbuf_clear(&why);
	memset(&unused, 0, sizeof(unused));
	if (creds_parse_sts_xml(resp->body.buf, resp->body.len, &unused,
	    &why) == 0) {
		creds_release(&unused);
		errbuf_set(&why, ERR_AUTH, "no error in the answer");
	}
	errbuf_set(eb, ERR_AUTH, "%s: HTTP %ld: %s", what, resp->status,
	    why.msg);
	eb->http_status = resp->status;
}

static int
src_web_identity(struct creds_provider *p, time_t now, struct creds *out,
    struct strbuf *tried, struct errbuf *eb)
{
	static const char *hdrs[] = {
	    "Content-Type: application/x-www-form-urlencoded; charset=utf-8" };
	const char *file = env(p->getenv_fn, "AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *arn = env(p->getenv_fn, "AWS_ROLE_ARN");
	struct strbuf form = STRBUF_INIT;
	struct http_response resp;
	struct http_request req;
	char *url = NULL, *what = NULL;
	int rc = -1;

	(void)now;
	if (file == NULL || arn == NULL) {
		strbuf_addf(tried, "web-identity (%s)", file == NULL &&
		    arn == NULL ? "not configured" : file == NULL ?
		    "AWS_ROLE_ARN without AWS_WEB_IDENTITY_TOKEN_FILE" :
		    "AWS_WEB_IDENTITY_TOKEN_FILE without AWS_ROLE_ARN");
		return 0;
	}
	http_response_init(&resp);
	if (sts_form(p->getenv_fn, arn, file, &form, eb) == -1 ||
	    (url = sts_endpoint(p->getenv_fn, eb)) == NULL)
		goto out;
	what = xasprintf("POST '%s'", url);
	creds_request(p, &req, "POST", url, hdrs, nitems(hdrs), 0);
	req.body = form.buf;
	req.body_len = form.len;
	if (creds_http(p, &req, &resp, CREDS_ATTEMPTS, what, eb) == -1)
		goto out;
	if (resp.status != 200) {
		sts_refused(&resp, what, eb);
		goto out;
	}
	if (creds_parse_sts_xml(resp.body.buf, resp.body.len, out, eb) == -1) {
		errbuf_prefix(eb, "%s", what);
		goto out;
	}
	rc = 1;
 out:
	strbuf_wipe(&form);
	strbuf_wipe(&resp.body);
	http_response_release(&resp);
	free(what);
	free(url);
	return rc;
}

/* Source 4: the ECS (or EKS Pod Identity) container endpoint */

/* Plain http only to this host, a loopback or the ECS/EKS addresses. */
static int
ecs_url_allowed(const char *url)
{
	static const char *const hosts[] = { "localhost", "::1",
	    "169.254.170.2", "169.254.170.23", "fd00:ec2::23" };
	const char *h, *e;
	size_t i, len;

	if (strncasecmp(url, "https://", 8) == 0)
		return 1;
	if (strncasecmp(url, "http://", 7) != 0)
		return 0;
	h = url + 7;
	if (*h == '[') {
		if ((e = strchr(++h, ']')) == NULL)
			return 0;
	} else
		e = h + strcspn(h, ":/?#");
	len = (size_t)(e - h);
	for (i = 0; i < nitems(hosts); i++)
		if (strlen(hosts[i]) == len &&
		    strncasecmp(h, hosts[i], len) == 0)
			return 1;
	return len > 4 && strncmp(h, "127.", 4) == 0 &&
	    strspn(h, "0123456789.") == len;
}

/* "Authorization: <token>" from the token file or variable, or NULL. */
static int
ecs_auth_header(creds_getenv_fn fn, char **header, struct errbuf *eb)
{
	struct strbuf tok = STRBUF_INIT;
	const char *file = env(fn, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *v = env(fn, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
	size_t i;
	int rc = -1;

	*header = NULL;
	if (file != NULL) {
		if (strbuf_read_file(&tok, file, CREDS_MAX_TOKEN) == -1) {
			errbuf_setsys(eb, ERR_AUTH, "read AWS_CONTAINER_"
			    "AUTHORIZATION_TOKEN_FILE '%s'", file);
			goto out;
		}
		strbuf_rtrim(&tok);
	} else if (v != NULL)
		strbuf_adds(&tok, v);
	else
		return 0;
	if (tok.len == 0) {
		errbuf_set(eb, ERR_AUTH, "the container authorization token "
		    "is empty");
		goto out;
	}
	/* It goes into a header: no line breaks, no control bytes. */
	for (i = 0; i < tok.len; i++) {
		if ((unsigned char)tok.buf[i] < ' ' || tok.buf[i] == 0x7f) {
			errbuf_set(eb, ERR_AUTH, "the container authorization "
			    "token has a control byte");
			goto out;
		}
	}
	*header = xasprintf("Authorization: %s", tok.buf);
	rc = 0;
 out:
	strbuf_wipe(&tok);
	return rc;
}

static int
src_ecs(struct creds_provider *p, time_t now, struct creds *out,
    struct strbuf *tried, struct errbuf *eb)
{
	const char *rel = env(p->getenv_fn,
	    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env(p->getenv_fn,
	    "AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *hdrs[1];
	struct http_response resp;
	struct http_request req;
	char *url = NULL, *what = NULL, *auth = NULL;
	int rc = -1;

	(void)now;
	if (rel == NULL && full == NULL) {
		strbuf_adds(tried, "ecs (not configured)");
		return 0;
	}
	http_response_init(&resp);
	if (rel != NULL)
		url = rel[0] == '/' ? xasprintf("%s%s", ECS_HOST, rel) :
		    xasprintf("%s/%s", ECS_HOST, rel);
	else if (ecs_url_allowed(full))
		url = xstrdup(full);
	else {
		errbuf_set(eb, ERR_AUTH, "AWS_CONTAINER_CREDENTIALS_FULL_URI "
		    "'%s' is neither https nor http to a loopback or the "
		    "ECS/EKS address", full);
		goto out;
	}
	if (ecs_auth_header(p->getenv_fn, &auth, eb) == -1)
		goto out;
	hdrs[0] = auth;
	what = xasprintf("GET '%s'", url);
	creds_request(p, &req, "GET", url, hdrs, auth != NULL ? 1 : 0, 1);
	if (creds_http(p, &req, &resp, CREDS_ATTEMPTS, what, eb) == -1 ||
	    creds_http_status(&resp, what, eb) == -1)
		goto out;
	if (creds_parse_json(resp.body.buf, resp.body.len, out, eb) == -1) {
		errbuf_prefix(eb, "%s", what);
		goto out;
	}
	rc = 1;
 out:
	wipe_free(auth);
	strbuf_wipe(&resp.body);
	http_response_release(&resp);
	free(what);
	free(url);
	return rc;
}

/* Source 5: EC2 instance metadata, IMDSv2 */

static void
imds_forget_token(struct creds_provider *p)
{
	wipe_free(p->imds_token);
	p->imds_token = NULL;
	p->imds_token_expires = 0;
}

static int
imds_get_token(struct creds_provider *p, const char *base, time_t now,
    struct errbuf *eb)
{
	static const char *hdrs[] = {
	    "X-aws-ec2-metadata-token-ttl-seconds: 21600" };
	struct http_response resp;
	struct http_request req;
	char *url = url_join(base, "/latest/api/token");
	char *what = xasprintf("PUT '%s'", url);
	int rc = -1;

	http_response_init(&resp);
	creds_request(p, &req, "PUT", url, hdrs, nitems(hdrs), 1);
	if (creds_http(p, &req, &resp, 1, what, eb) == -1 ||
	    creds_http_status(&resp, what, eb) == -1)
		goto out;
	strbuf_rtrim(&resp.body);
	if (resp.body.len == 0 || !is_token_text(resp.body.buf,
	    resp.body.len)) {
		errbuf_set(eb, ERR_AUTH, "%s: not a token", what);
		goto out;
	}
	imds_forget_token(p);
	p->imds_token = xstrdup(resp.body.buf);
	p->imds_token_expires = now + IMDS_TOKEN_TTL - 60;
	rc = 0;
 out:
	strbuf_wipe(&resp.body);
	http_response_release(&resp);
	free(what);
	free(url);
	return rc;
}

/* GET with the session token; a 401 means it expired: get another. */
static int
imds_get(struct creds_provider *p, const char *base, const char *path,
    time_t now, struct http_response *resp, struct errbuf *eb)
{
	struct http_request req;
	const char *hdrs[1];
	char *url = url_join(base, path), *what = xasprintf("GET '%s'", url);
	char *hdr = NULL;
	int tries, rc = -1;

	for (tries = 0; tries < 2; tries++) {
		if ((p->imds_token == NULL || now >= p->imds_token_expires) &&
		    imds_get_token(p, base, now, eb) == -1)
			goto out;
		hdr = xasprintf("X-aws-ec2-metadata-token: %s", p->imds_token);
		hdrs[0] = hdr;
		creds_request(p, &req, "GET", url, hdrs, 1, 1);
		rc = creds_http(p, &req, resp, 1, what, eb);
		wipe_free(hdr);
		hdr = NULL;
		if (rc == -1 || resp->status != 401)
			break;
		imds_forget_token(p);
	}
	if (rc == 0)
		rc = creds_http_status(resp, what, eb);
 out:
	free(what);
	free(url);
	return rc;
}

static int
imds_fetch(struct creds_provider *p, const char *base, time_t now,
    struct creds *out, struct errbuf *eb)
{
	struct http_response resp;
	char *path = NULL;
	size_t len;
	int rc = -1;

	http_response_init(&resp);
	if (imds_get(p, base, IMDS_CREDS_PATH, now, &resp, eb) == -1)
		goto out;
	len = strcspn(resp.body.buf, "\r\n");
	if (len == 0 || !is_token_text(resp.body.buf, len) ||
	    memchr(resp.body.buf, '/', len) != NULL) {
		errbuf_set(eb, ERR_AUTH, "no IAM role attached to the "
		    "instance");
		goto out;
	}
	path = xasprintf("%s%.*s", IMDS_CREDS_PATH, (int)len, resp.body.buf);
	if (imds_get(p, base, path, now, &resp, eb) == -1)
		goto out;
	rc = creds_parse_json(resp.body.buf, resp.body.len, out, eb);
 out:
	strbuf_wipe(&resp.body);
	http_response_release(&resp);
	free(path);
	return rc;
}

static int
src_imds(struct creds_provider *p, time_t now, struct creds *out,
    struct strbuf *tried, struct errbuf *eb)
{
	const char *off = env(p->getenv_fn, "AWS_EC2_METADATA_DISABLED");
	const char *base = env(p->getenv_fn,
	    "AWS_EC2_METADATA_SERVICE_ENDPOINT");

	if (off != NULL && strcasecmp(off, "true") == 0) {
		strbuf_adds(tried, "imds (AWS_EC2_METADATA_DISABLED)");
		return 0;
	}
	if (p->imds_dead) {
		strbuf_adds(tried, "imds (no answer earlier in this run)");
		return 0;
	}
	if (imds_fetch(p, base != NULL ? base : IMDS_DEFAULT_ENDPOINT, now,
	    out, eb) == -1) {
		/* Not on EC2: ask no more. Once it answered, keep asking. */
		if (p->no_answer && p->pinned < 0)
			p->imds_dead = 1;
		return -1;
	}
	return 1;
}

/* The chain and its cache */

struct creds_provider *
creds_provider_new(creds_getenv_fn getenv_fn, struct http_pool *http,
    struct errbuf *eb)
{
	struct creds_provider *p;

	if (getenv_fn == NULL) {
		errbuf_set(eb, ERR_INTERNAL, "creds_provider_new: no getenv");
		return NULL;
	}
	p = xcalloc(1, sizeof(*p));
	p->getenv_fn = getenv_fn;
	p->http = http;
	p->pinned = -1;
	errbuf_clear(&p->err);
	return p;
}

void
creds_provider_free(struct creds_provider *p)
{
	if (p == NULL)
		return;
	creds_release(&p->cur);
	imds_forget_token(p);
	http_pool_free(p->own_http);
	free(p);
}

/* Walk the sources in order; the first that answers is pinned. */
static int
creds_walk(struct creds_provider *p, time_t now, struct creds *out,
    struct errbuf *eb)
{
	struct strbuf tried, note;
	char why[sizeof(eb->msg)];
	size_t i;
	int r = 0;

	strbuf_init(&tried, 0);
	strbuf_init(&note, 0);
	for (i = 0; i < nitems(sources) && r == 0; i++) {
		log_debug("credentials: trying %s", sources[i].name);
		strbuf_reset(&note);
		if ((r = sources[i].fetch(p, now, out, &note, eb)) == 1) {
			p->pinned = (int)i;
			snprintf(out->source, sizeof(out->source), "%s",
			    sources[i].name);
		} else if (r == -1 && sources[i].last_resort) {
			strbuf_addf(&note, "%s (%s)", sources[i].name,
			    eb->msg);
			r = 0;
		}
		if (note.len > 0) {
			if (tried.len > 0)
				strbuf_adds(&tried, ", ");
			strbuf_add(&tried, note.buf, note.len);
		}
	}
	if (r == 0)
		errbuf_set(eb, ERR_AUTH, "no AWS credentials: %s", tried.buf);
	else if (r == -1) {
		snprintf(why, sizeof(why), "%s", eb->msg);
		errbuf_set(eb, ERR_AUTH, "AWS credentials from %s: %s%s%s%s",
		    sources[i - 1].name, why, tried.len > 0 ? " (tried " : "",
		    tried.buf, tried.len > 0 ? ")" : "");
	}
	strbuf_release(&tried);
	strbuf_release(&note);
	return r == 1 ? 0 : -1;
}

static int
creds_fetch(struct creds_provider *p, time_t now, struct creds *out,
    struct errbuf *eb)
{
	const struct creds_source *src;
	struct strbuf ignored = STRBUF_INIT;
	int r;

	if (p->pinned < 0)
		return creds_walk(p, now, out, eb);
	src = &sources[p->pinned];
	r = src->fetch(p, now, out, &ignored, eb);
	strbuf_release(&ignored);
	if (r == 1) {
		snprintf(out->source, sizeof(out->source), "%s", src->name);
		return 0;
	}
	if (r == 0)
		errbuf_set(eb, ERR_AUTH, "%s is no longer configured",
		    src->name);
	errbuf_prefix(eb, "AWS credentials from %s", src->name);
	return -1;
}

static int
creds_usable(const struct creds *c, time_t now)
{
	return c->access_key != NULL && (c->expires == 0 || now < c->expires);
}

static int
creds_due(const struct creds *c, time_t now)
{
	return c->access_key == NULL ||
	    (c->expires != 0 && now >= c->expires - CREDS_REFRESH_MARGIN);
}

static void
creds_refresh(struct creds_provider *p, time_t now)
{
	struct creds fresh;
	struct errbuf eb;
	int rc;

	memset(&fresh, 0, sizeof(fresh));
	errbuf_clear(&eb);
	p->retry_after = now + CREDS_RETRY_SECS;
	rc = creds_fetch(p, now, &fresh, &eb);
	if (rc == 0 && fresh.expires != 0 && fresh.expires <= now) {
		errbuf_set(&eb, ERR_AUTH, "AWS credentials from %s came "
		    "already expired (is the clock right?)", fresh.source);
		creds_release(&fresh);
		rc = -1;
	}
	if (rc == -1) {
		eb.kind = ERR_AUTH;
		p->err = eb;
		if (creds_usable(&p->cur, now))
			log_warn("%s; the current ones stay valid %lld s more",
			    eb.msg, (long long)(p->cur.expires - now));
		return;
	}
	if (fresh.expires != 0)
		log_debug("credentials: from %s, access key %.8s..., expire "
		    "in %lld s", fresh.source, fresh.access_key,
		    (long long)(fresh.expires - now));
	else
		log_debug("credentials: from %s, access key %.8s..., no "
		    "expiry", fresh.source, fresh.access_key);
	if (creds_due(&fresh, now))
		log_warn("AWS credentials from %s expire in %lld s, within "
		    "the refresh margin", fresh.source,
		    (long long)(fresh.expires - now));
	creds_release(&p->cur);
	p->cur = fresh;
	errbuf_clear(&p->err);
}

int
creds_get(struct creds_provider *p, time_t now, struct creds *out,
    struct errbuf *eb)
{
	if (creds_due(&p->cur, now) && now >= p->retry_after)
		creds_refresh(p, now);
	if (!creds_usable(&p->cur, now)) {
		if (p->err.kind == ERR_NONE)
			errbuf_set(&p->err, ERR_AUTH, "AWS credentials from %s "
			    "expired", p->cur.source);
		if (eb != NULL)
			*eb = p->err;
		return -1;
	}
	creds_copy(out, &p->cur);
	return 0;
}
