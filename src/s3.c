/*
 * s3: uploads as small state machines over the http pool.
 *
 * An op is one upload (or one HEAD/abort); it sends s3_reqs. A request is
 * built afresh (signed with the time of sending) at each attempt. Failed
 * attempts wait on a timer list for their backoff, then go again.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "creds.h"
#include "http.h"
#include "log.h"
#include "s3.h"
#include "s3xml.h"
#include "sigv4.h"
#include "strbuf.h"

#define S3_MAX_PARTS		10000
#define S3_MIB			(1024ULL * 1024ULL)
#define S3_BACKOFF_BASE_MS	200.0
#define S3_BACKOFF_MAX_MS	20000.0
#define S3_RETRY_TOKENS		500
#define S3_RETRY_COST		5
#define S3_RETRY_COST_TIMEOUT	10
#define S3_EMPTY_SHA256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

enum s3_kind { REQ_PUT, REQ_MPU_CREATE, REQ_MPU_PART, REQ_MPU_COMPLETE,
    REQ_MPU_ABORT, REQ_HEAD };

struct s3_region {
	char			*bucket;
	char			*region;
	struct s3_region	*next;
};

struct s3_client {
	const struct config	*cfg;
	struct creds_provider	*cp;
	struct http_pool	*pool;
	char			*scheme;	/* "http" or "https" */
	char			*hostport;	/* endpoint host[:port], or NULL */
	int			 ip_host;	/* endpoint is an address or localhost */
	struct s3_region	*regions;
	struct s3_req		*waiting;	/* retries, by due time */
	int			 busy;		/* ops not done */
	int			 ended;		/* ops ended since last run */
	int			 tokens;	/* retry budget */
	int			 streak;	/* failed answers in a row */
	int			 streak_max;	/* then the endpoint is down */
};

struct s3_req {
	struct s3_op		*op;
	enum s3_kind		 kind;
	int			 part;		/* 1-based, for parts */
	off_t			 off, len;	/* file range */
	struct strbuf		 mem;		/* in-memory body (complete) */
	char			 sha_hex[65];
	char			 sha_b64[48];
	char			 md5_hex[33];
	char			 md5_b64[28];
	int			 attempts;
	int			 redirects;
	double			 due;
	struct s3_req		*next;		/* in the waiting list */
	/* one attempt */
	struct strbuf		 url;
	char			*hdrs[16];
	size_t			 nhdrs;
	struct http_request	 hreq;
	struct http_response	 hresp;
};

struct s3_part {
	char	etag[80];
	char	sha_b64[48];
};

struct s3_op {
	struct s3_client	*c;
	struct s3_put		*put;		/* NULL for HEAD/abort */
	const char		*bucket;
	const char		*key;
	int			 fd;
	off_t			 size;
	/* multipart */
	char			*upload_id;
	uint64_t		 part_size;
	int			 nparts;
	int			 next_part;	/* next part to start, 1-based */
	int			 parts_done;
	int			 inflight;
	struct s3_part		*parts;
	EVP_MD_CTX		*whole;		/* SHA-256 over all parts, in order */
	int			 aborting;
	int			 aborted;
	/* result */
	int			 finished;
	int			 failed;
	struct errbuf		 eb;
	long			 status;
	uint64_t		 head_size;
	char			 etag[80];
};

static void	s3_req_send(struct s3_client *c, struct s3_req *r);
static void	s3_op_fail(struct s3_op *op, const struct errbuf *eb);
static void	s3_mpu_next(struct s3_op *op);

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void
b64(const unsigned char *in, size_t len, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* ---- addressing ---- */

static int
host_is_ip(const char *host)
{
	size_t n = strcspn(host, ":");

	if (host[0] == '[')
		return 1;
	if (n == 9 && strncasecmp(host, "localhost", 9) == 0)
		return 1;
	return strspn(host, "0123456789.") == n;
}

static const char *
s3_bucket_region(struct s3_client *c, const char *bucket)
{
	struct s3_region *r;

	for (r = c->regions; r != NULL; r = r->next)
		if (strcmp(r->bucket, bucket) == 0)
			return r->region;
	return c->cfg->region != NULL ? c->cfg->region : "us-east-1";
}

static void
s3_set_region(struct s3_client *c, const char *bucket, const char *region)
{
	struct s3_region *r;

	for (r = c->regions; r != NULL; r = r->next) {
		if (strcmp(r->bucket, bucket) == 0) {
			free(r->region);
			r->region = xstrdup(region);
			return;
		}
	}
	r = xcalloc(1, sizeof(*r));
	r->bucket = xstrdup(bucket);
	r->region = xstrdup(region);
	r->next = c->regions;
	c->regions = r;
}

static int
s3_virtual(struct s3_client *c, const char *bucket)
{
	switch (c->cfg->addressing) {
	case ADDR_PATH:
		return 0;
	case ADDR_VIRTUAL:
		return 1;
	default:
		if (c->ip_host)
			return 0;
		if (strchr(bucket, '.') != NULL && strcmp(c->scheme, "https") == 0)
			return 0;
		return 1;
	}
}

/*
 * The host to send to and sign, the raw path to sign, and the URL to ask
 * for (path encoded once, as the signer encodes it).
 */
static void
s3_address(struct s3_client *c, const char *bucket, const char *key,
    const char *query, struct strbuf *host, struct strbuf *path,
    struct strbuf *url)
{
	strbuf_reset(host);
	strbuf_reset(path);
	if (s3_virtual(c, bucket))
		strbuf_addf(host, "%s.", bucket);
	if (c->hostport != NULL)
		strbuf_adds(host, c->hostport);
	else
		strbuf_addf(host, "s3.%s.amazonaws.com",
		    s3_bucket_region(c, bucket));
	if (!s3_virtual(c, bucket))
		strbuf_addf(path, "/%s", bucket);
	strbuf_addch(path, '/');
	strbuf_adds(path, key);
	if (url != NULL) {
		strbuf_reset(url);
		strbuf_addf(url, "%s://%s", c->scheme, host->buf);
		sigv4_uri_encode(url, path->buf, path->len, 1);
		if (query != NULL && *query != '\0')
			strbuf_addf(url, "?%s", query);
	}
}

char *
s3_object_url(struct s3_client *c, const char *bucket, const char *key)
{
	struct strbuf host = STRBUF_INIT, path = STRBUF_INIT, url = STRBUF_INIT;

	s3_address(c, bucket, key, NULL, &host, &path, &url);
	strbuf_release(&host);
	strbuf_release(&path);
	return strbuf_detach(&url, NULL);
}

struct s3_client *
s3_client_new(const struct config *cfg, struct creds_provider *cp,
    struct http_pool *pool, struct errbuf *eb)
{
	struct s3_client *c = xcalloc(1, sizeof(*c));
	const char *ep = cfg->endpoint, *hp;

	(void)eb;
	c->cfg = cfg;
	c->cp = cp;
	c->pool = pool;
	c->tokens = S3_RETRY_TOKENS;
	/* enough for every transfer in flight to fail twice in a row */
	c->streak_max = 2 * cfg->concurrency < 10 ? 10 : 2 * cfg->concurrency;
	if (ep == NULL) {
		c->scheme = xstrdup("https");
		return c;
	}
	hp = strstr(ep, "://") + 3;
	c->scheme = xstrndup(ep, (size_t)(hp - 3 - ep));
	c->hostport = xstrndup(hp, strcspn(hp, "/"));
	c->ip_host = host_is_ip(c->hostport);
	return c;
}

void
s3_client_free(struct s3_client *c)
{
	struct s3_region *r;

	if (c == NULL)
		return;
	while ((r = c->regions) != NULL) {
		c->regions = r->next;
		free(r->bucket);
		free(r->region);
		free(r);
	}
	free(c->scheme);
	free(c->hostport);
	free(c);
}

int
s3_client_unreachable(const struct s3_client *c)
{
	return c->streak >= c->streak_max;
}

int
s3_client_busy(const struct s3_client *c)
{
	return c->busy;
}

/* ---- requests ---- */

static struct s3_req *
s3_req_new(struct s3_op *op, enum s3_kind kind)
{
	struct s3_req *r = xcalloc(1, sizeof(*r));

	r->op = op;
	r->kind = kind;
	strbuf_init(&r->mem, 0);
	strbuf_init(&r->url, 0);
	http_request_init(&r->hreq);
	http_response_init(&r->hresp);
	return r;
}

static void
s3_req_clear_attempt(struct s3_req *r)
{
	size_t i;

	for (i = 0; i < r->nhdrs; i++) {
		OPENSSL_cleanse(r->hdrs[i], strlen(r->hdrs[i]));
		free(r->hdrs[i]);
	}
	r->nhdrs = 0;
}

static void
s3_req_free(struct s3_req *r)
{
	if (r == NULL)
		return;
	s3_req_clear_attempt(r);
	strbuf_release(&r->mem);
	strbuf_release(&r->url);
	http_response_release(&r->hresp);
	free(r);
}

/*
 * Hash the body once: SHA-256 (payload hash and checksum) and MD5
 * (Content-MD5, and the ETag S3 must answer). For parts, also feed the
 * whole-object SHA-256.
 */
static int
s3_req_hash(struct s3_req *r, EVP_MD_CTX *whole, struct errbuf *eb)
{
	static unsigned char buf[1 << 18];
	unsigned char sha[32], md5[16];
	EVP_MD_CTX *s = EVP_MD_CTX_new(), *m = EVP_MD_CTX_new();
	off_t pos = 0;
	ssize_t n;
	int rc = -1;

	if (s == NULL || m == NULL ||
	    !EVP_DigestInit_ex(s, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(m, EVP_md5(), NULL)) {
		errbuf_set(eb, ERR_INTERNAL, "libcrypto: cannot hash");
		goto out;
	}
	if (r->mem.len > 0 || r->op->fd == -1) {
		const void *p = r->mem.len ? r->mem.buf : r->op->put->data;
		size_t len = r->mem.len ? r->mem.len : r->op->put->len;

		EVP_DigestUpdate(s, p, len);
		EVP_DigestUpdate(m, p, len);
		if (whole != NULL)
			EVP_DigestUpdate(whole, p, len);
	}
	while (r->mem.len == 0 && r->op->fd != -1 && pos < r->len) {
		size_t want = (size_t)(r->len - pos) < sizeof(buf) ?
		    (size_t)(r->len - pos) : sizeof(buf);

		n = pread(r->op->fd, buf, want, r->off + pos);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = ENODATA;
			errbuf_setsys(eb, ERR_IO, "read '%s'", r->op->key);
			goto out;
		}
		EVP_DigestUpdate(s, buf, (size_t)n);
		EVP_DigestUpdate(m, buf, (size_t)n);
		if (whole != NULL)
			EVP_DigestUpdate(whole, buf, (size_t)n);
		pos += n;
	}
	EVP_DigestFinal_ex(s, sha, NULL);
	EVP_DigestFinal_ex(m, md5, NULL);
	hex_encode(sha, 32, r->sha_hex);
	b64(sha, 32, r->sha_b64);
	hex_encode(md5, 16, r->md5_hex);
	b64(md5, 16, r->md5_b64);
	if (r->op->put != NULL && r->kind == REQ_PUT)
		memcpy(r->op->put->sha256, sha, 32);
	rc = 0;
 out:
	EVP_MD_CTX_free(s);
	EVP_MD_CTX_free(m);
	return rc;
}

static void
s3_req_header(struct s3_req *r, struct sigv4_header *sh, const char *name,
    const char *value)
{
	sh[r->nhdrs].name = name;
	sh[r->nhdrs].value = value;
	r->hdrs[r->nhdrs++] = xasprintf("%s: %s", name, value);
}

static const char *
s3_req_method(const struct s3_req *r)
{
	switch (r->kind) {
	case REQ_PUT:
	case REQ_MPU_PART:
		return "PUT";
	case REQ_MPU_CREATE:
	case REQ_MPU_COMPLETE:
		return "POST";
	case REQ_MPU_ABORT:
		return "DELETE";
	default:
		return "HEAD";
	}
}

static void
s3_req_query(const struct s3_req *r, struct strbuf *q)
{
	struct s3_op *op = r->op;

	switch (r->kind) {
	case REQ_MPU_CREATE:
		strbuf_adds(q, "uploads=");
		break;
	case REQ_MPU_PART:
		strbuf_addf(q, "partNumber=%d&uploadId=", r->part);
		sigv4_uri_encode(q, op->upload_id, strlen(op->upload_id), 0);
		break;
	case REQ_MPU_COMPLETE:
	case REQ_MPU_ABORT:
		strbuf_adds(q, "uploadId=");
		sigv4_uri_encode(q, op->upload_id, strlen(op->upload_id), 0);
		break;
	default:
		break;
	}
}

/* Headers that only uploads of data carry. */
static void
s3_req_data_headers(struct s3_req *r, struct sigv4_header *sh)
{
	const struct config *cfg = r->op->c->cfg;
	struct s3_put *put = r->op->put;

	if (r->kind == REQ_PUT || r->kind == REQ_MPU_PART) {
		s3_req_header(r, sh, "content-md5", r->md5_b64);
		s3_req_header(r, sh, "x-amz-checksum-sha256", r->sha_b64);
	}
	if (r->kind != REQ_PUT && r->kind != REQ_MPU_CREATE)
		return;
	if (r->kind == REQ_MPU_CREATE)
		s3_req_header(r, sh, "x-amz-checksum-algorithm", "SHA256");
	if (put->content_type != NULL)
		s3_req_header(r, sh, "content-type", put->content_type);
	if (cfg->storage_class != NULL)
		s3_req_header(r, sh, "x-amz-storage-class", cfg->storage_class);
	if (cfg->sse != NULL)
		s3_req_header(r, sh, "x-amz-server-side-encryption", cfg->sse);
	if (cfg->sse_kms_key_id != NULL)
		s3_req_header(r, sh,
		    "x-amz-server-side-encryption-aws-kms-key-id",
		    cfg->sse_kms_key_id);
}

/* Build, sign and queue one attempt. */
static int
s3_req_prepare(struct s3_client *c, struct s3_req *r, struct errbuf *eb)
{
	struct s3_op *op = r->op;
	struct sigv4_header sh[16];
	struct sigv4_request sr;
	struct sigv4_creds sc;
	struct creds cr;
	struct strbuf host = STRBUF_INIT, path = STRBUF_INIT, q = STRBUF_INIT;
	char amz_date[17], *auth = NULL;
	const char *region = s3_bucket_region(c, op->bucket);
	time_t now = time(NULL);
	int rc = -1;

	memset(&cr, 0, sizeof(cr));
	s3_req_clear_attempt(r);
	if (creds_get(c->cp, now, &cr, eb) == -1)
		goto out;
	s3_req_query(r, &q);
	s3_address(c, op->bucket, op->key, q.buf, &host, &path, &r->url);
	sigv4_format_date(now, amz_date);
	s3_req_header(r, sh, "host", host.buf);
	s3_req_header(r, sh, "x-amz-date", amz_date);
	s3_req_header(r, sh, "x-amz-content-sha256",
	    r->sha_hex[0] ? r->sha_hex : S3_EMPTY_SHA256);
	if (cr.session_token != NULL)
		s3_req_header(r, sh, "x-amz-security-token", cr.session_token);
	if (op->put != NULL)
		s3_req_data_headers(r, sh);
	memset(&sr, 0, sizeof(sr));
	sr.method = s3_req_method(r);
	sr.path = path.buf;
	sr.query = q.buf;
	sr.headers = sh;
	sr.nheaders = r->nhdrs;
	sr.payload_hash = r->sha_hex[0] ? r->sha_hex : S3_EMPTY_SHA256;
	sc.access_key = cr.access_key;
	sc.secret_key = cr.secret_key;
	sc.session_token = cr.session_token;
	if (sigv4_authorization(&sr, &sc, amz_date, region, "s3", &auth,
	    eb) == -1)
		goto out;
	r->hdrs[r->nhdrs++] = xasprintf("Authorization: %s", auth);
	http_request_init(&r->hreq);
	r->hreq.method = sr.method;
	r->hreq.url = r->url.buf;
	r->hreq.headers = (const char **)r->hdrs;
	r->hreq.nheaders = r->nhdrs;
	r->hreq.connect_timeout_ms = 10000;
	r->hreq.low_speed_secs = 60;
	r->hreq.ca_bundle = c->cfg->ca_bundle;
	if (r->mem.len > 0) {
		r->hreq.body = r->mem.buf;
		r->hreq.body_len = r->mem.len;
	} else if (op->put != NULL && (r->kind == REQ_PUT ||
	    r->kind == REQ_MPU_PART)) {
		if (op->fd == -1) {
			r->hreq.body = op->put->data;
			r->hreq.body_len = op->put->len;
			/* a zero-length body still needs a body for PUT */
			if (r->hreq.body == NULL)
				r->hreq.body = "";
		} else {
			r->hreq.body_fd = op->fd;
			r->hreq.body_off = r->off;
			r->hreq.body_size = r->len;
		}
	}
	rc = 0;
 out:
	if (auth != NULL) {
		OPENSSL_cleanse(auth, strlen(auth));
		free(auth);
	}
	creds_release(&cr);
	strbuf_release(&host);
	strbuf_release(&path);
	strbuf_release(&q);
	return rc;
}

static void	s3_req_done(void *arg, const struct http_request *req,
		    struct http_response *resp);

static void
s3_req_send(struct s3_client *c, struct s3_req *r)
{
	struct errbuf eb;

	errbuf_clear(&eb);
	r->attempts++;
	if (s3_req_prepare(c, r, &eb) == -1 ||
	    http_pool_add(c->pool, &r->hreq, &r->hresp, s3_req_done, r,
	    &eb) == -1) {
		struct s3_op *op = r->op;

		s3_req_free(r);
		op->inflight--;
		s3_op_fail(op, &eb);
	}
}

/* ---- answers ---- */

static const char *
s3_req_what(const struct s3_req *r, char *buf, size_t bufsz)
{
	snprintf(buf, bufsz, "%s 's3://%s/%s'%s", s3_req_method(r),
	    r->op->bucket, r->op->key,
	    r->kind == REQ_MPU_PART ? " (part)" :
	    r->kind == REQ_MPU_CREATE ? " (start multipart)" :
	    r->kind == REQ_MPU_COMPLETE ? " (complete multipart)" :
	    r->kind == REQ_MPU_ABORT ? " (abort multipart)" : "");
	return buf;
}

/* Fill eb from an answer, with S3's error code and message when given. */
static void
s3_req_error(const struct s3_req *r, const struct s3xml *x,
    struct errbuf *eb)
{
	const struct http_response *resp = &r->hresp;
	char what[1400];

	s3_req_what(r, what, sizeof(what));
	if (resp->curl_code != CURLE_OK)
		errbuf_set(eb, ERR_REMOTE, "%s: %s", what, resp->error);
	else if (x->code[0] != '\0')
		errbuf_set(eb, ERR_REMOTE, "%s: HTTP %ld %s%s%s", what,
		    resp->status, x->code, x->message[0] ? ": " : "",
		    x->message);
	else
		errbuf_set(eb, ERR_REMOTE, "%s: HTTP %ld", what, resp->status);
	if (resp->status == 401 || resp->status == 403)
		eb->kind = ERR_AUTH;
	eb->http_status = resp->status;
}

static int
s3_retryable(const struct http_response *resp, const struct s3xml *x)
{
	static const char *const codes[] = {
		"RequestTimeout", "RequestTimeTooSkewed", "InternalError",
		"SlowDown", "ServiceUnavailable", "Throttling",
		"ThrottlingException", "RequestThrottled", "BadDigest",
		"XAmzContentSHA256Mismatch", "IncompleteBody",
		"ExpiredToken", NULL,
	};
	int i;

	if (resp->curl_code != CURLE_OK)
		return resp->curl_code != CURLE_SSL_CACERT &&
		    resp->curl_code != CURLE_PEER_FAILED_VERIFICATION &&
		    resp->curl_code != CURLE_READ_ERROR &&
		    resp->curl_code != CURLE_ABORTED_BY_CALLBACK &&
		    resp->curl_code != CURLE_URL_MALFORMAT;
	if (resp->status >= 500 || resp->status == 429)
		return 1;
	for (i = 0; codes[i] != NULL; i++)
		if (strcmp(x->code, codes[i]) == 0)
			return 1;
	return 0;
}

/* A redirect or a region error names the bucket's region: sign again. */
static int
s3_region_moved(struct s3_req *r, const struct s3xml *x)
{
	struct s3_client *c = r->op->c;
	char *region = http_response_header(&r->hresp, "x-amz-bucket-region");
	const char *cur = s3_bucket_region(c, r->op->bucket);
	int moved = 0;

	if (region == NULL && x->region[0] != '\0')
		region = xstrdup(x->region);
	if (region != NULL && r->redirects < 3 && strcmp(region, cur) != 0 &&
	    (r->hresp.status == 301 || r->hresp.status == 307 ||
	    r->hresp.status == 400 || r->hresp.status == 403)) {
		log_info("bucket '%s' is in region '%s', not '%s': signing again",
		    r->op->bucket, region, cur);
		s3_set_region(c, r->op->bucket, region);
		r->redirects++;
		moved = 1;
	}
	free(region);
	return moved;
}

static double
s3_backoff_ms(int attempt)
{
	int shift = attempt - 1 < 16 ? attempt - 1 : 16;
	double cap = S3_BACKOFF_BASE_MS * (double)(1u << shift);
	unsigned int rnd = 0;

	if (cap > S3_BACKOFF_MAX_MS)
		cap = S3_BACKOFF_MAX_MS;
	(void)RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
	/* full jitter */
	return cap * ((double)rnd / 4294967295.0);
}

static void
s3_req_wait(struct s3_client *c, struct s3_req *r, double delay_ms)
{
	struct s3_req **pp;

	r->due = now_ms() + delay_ms;
	for (pp = &c->waiting; *pp != NULL && (*pp)->due <= r->due;
	    pp = &(*pp)->next)
		;
	r->next = *pp;
	*pp = r;
}

/* Decide after a failed attempt: again (later) or give up. */
static int
s3_req_retry(struct s3_client *c, struct s3_req *r, const struct s3xml *x,
    const struct errbuf *eb)
{
	int cost = r->hresp.curl_code == CURLE_OPERATION_TIMEDOUT ?
	    S3_RETRY_COST_TIMEOUT : S3_RETRY_COST;

	if (!s3_retryable(&r->hresp, x) || r->attempts >= c->cfg->max_attempts)
		return 0;
	if (s3_client_unreachable(c))
		return 0;
	if (c->tokens < cost) {
		log_debug("%s: retry budget spent, not retrying", eb->msg);
		return 0;
	}
	c->tokens -= cost;
	log_debug("%s: attempt %d of %d failed, retrying", eb->msg,
	    r->attempts, c->cfg->max_attempts);
	s3_req_wait(c, r, s3_backoff_ms(r->attempts));
	return 1;
}

static void
strip_quotes(char *dst, size_t dstsz, const char *src)
{
	size_t n;

	if (*src == '"')
		src++;
	n = strcspn(src, "\"");
	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
s3_op_end(struct s3_op *op)
{
	struct s3_client *c = op->c;
	struct s3_put *put = op->put;

	op->finished = 1;
	c->busy--;
	c->ended++;
	if (put == NULL)
		return;
	put->failed = op->failed;
	put->eb = op->eb;
	snprintf(put->etag, sizeof(put->etag), "%s", op->etag);
	put->parts = op->nparts;
	put->upload_left = op->upload_id != NULL && op->failed && !op->aborted;
	put->op = NULL;
	free(op->upload_id);
	free(op->parts);
	EVP_MD_CTX_free(op->whole);
	free(op);
	put->done(put);
}

static void
s3_mpu_abort(struct s3_op *op)
{
	struct s3_req *r;

	if (op->upload_id == NULL || op->aborting) {
		if (op->inflight == 0)
			s3_op_end(op);
		return;
	}
	op->aborting = 1;
	r = s3_req_new(op, REQ_MPU_ABORT);
	op->inflight++;
	s3_req_send(op->c, r);
}

/* Record the first failure; wind the op down once nothing is in flight. */
static void
s3_op_fail(struct s3_op *op, const struct errbuf *eb)
{
	if (!op->failed) {
		op->failed = 1;
		op->eb = *eb;
	}
	if (op->inflight > 0)
		return;
	if (op->upload_id != NULL && !op->aborting) {
		s3_mpu_abort(op);
		return;
	}
	if (op->inflight == 0)
		s3_op_end(op);
}

/* The ETag a single PUT or a part must have: the MD5 of what we sent. */
static int
s3_check_etag(struct s3_req *r, char *etag, size_t etagsz, struct errbuf *eb)
{
	char *h = http_response_header(&r->hresp, "ETag");
	char what[1400];
	int rc = 0;

	strip_quotes(etag, etagsz, h != NULL ? h : "");
	free(h);
	/* SSE-KMS ETags are not MD5s; S3 says nothing we can check then. */
	if (r->op->c->cfg->sse != NULL &&
	    strcmp(r->op->c->cfg->sse, "aws:kms") == 0)
		return 0;
	if (strcasecmp(etag, r->md5_hex) != 0) {
		errbuf_set(eb, ERR_REMOTE,
		    "%s: ETag '%s' is not the MD5 of what was sent ('%s')",
		    s3_req_what(r, what, sizeof(what)), etag, r->md5_hex);
		rc = -1;
	}
	return rc;
}

static int
s3_check_checksum(struct s3_req *r, struct errbuf *eb)
{
	char *h = http_response_header(&r->hresp, "x-amz-checksum-sha256");
	char what[1400];
	int rc = 0;

	if (h != NULL && strcmp(h, r->sha_b64) != 0) {
		errbuf_set(eb, ERR_REMOTE,
		    "%s: x-amz-checksum-sha256 '%s' is not what was sent ('%s')",
		    s3_req_what(r, what, sizeof(what)), h, r->sha_b64);
		rc = -1;
	}
	free(h);
	return rc;
}

static int
s3_complete_body(struct s3_op *op, struct strbuf *body)
{
	int i;

	strbuf_adds(body, "<CompleteMultipartUpload xmlns=\""
	    "http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (i = 0; i < op->nparts; i++)
		strbuf_addf(body, "<Part><PartNumber>%d</PartNumber>"
		    "<ETag>\"%s\"</ETag><ChecksumSHA256>%s</ChecksumSHA256>"
		    "</Part>", i + 1, op->parts[i].etag, op->parts[i].sha_b64);
	strbuf_adds(body, "</CompleteMultipartUpload>");
	return 0;
}

/* What a successful answer means for its op. 0, or -1 with eb. */
static int
s3_req_success(struct s3_req *r, const struct s3xml *x, struct errbuf *eb)
{
	struct s3_op *op = r->op;
	char what[1400];

	switch (r->kind) {
	case REQ_PUT:
		if (s3_check_etag(r, op->etag, sizeof(op->etag), eb) == -1 ||
		    s3_check_checksum(r, eb) == -1)
			return -1;
		return 0;
	case REQ_MPU_CREATE:
		if (x->upload_id[0] == '\0') {
			errbuf_set(eb, ERR_REMOTE, "%s: no UploadId in the answer",
			    s3_req_what(r, what, sizeof(what)));
			return -1;
		}
		op->upload_id = xstrdup(x->upload_id);
		if (op->put->on_upload_id != NULL)
			op->put->on_upload_id(op->put, op->upload_id);
		return 0;
	case REQ_MPU_PART:
		if (s3_check_etag(r, op->parts[r->part - 1].etag,
		    sizeof(op->parts[0].etag), eb) == -1 ||
		    s3_check_checksum(r, eb) == -1)
			return -1;
		memcpy(op->parts[r->part - 1].sha_b64, r->sha_b64,
		    sizeof(r->sha_b64));
		return 0;
	case REQ_MPU_COMPLETE:
		strip_quotes(op->etag, sizeof(op->etag), x->etag);
		/* radosgw 16 may answer an empty ETag: the root is the proof */
		if (strcmp(x->root, "CompleteMultipartUploadResult") != 0 ||
		    (op->etag[0] != '\0' && strchr(op->etag, '-') == NULL)) {
			errbuf_set(eb, ERR_REMOTE, "%s: the answer is not a "
			    "completed upload (ETag '%s')",
			    s3_req_what(r, what, sizeof(what)), op->etag);
			return -1;
		}
		return 0;
	case REQ_HEAD:
		{
			char *len = http_response_header(&r->hresp,
			    "Content-Length");
			char *et = http_response_header(&r->hresp, "ETag");

			op->head_size = len ? strtoull(len, NULL, 10) : 0;
			strip_quotes(op->etag, sizeof(op->etag), et ? et : "");
			free(len);
			free(et);
		}
		return 0;
	default:
		return 0;
	}
}

/* A 200 whose body is an <Error> (CompleteMultipartUpload does that). */
static int
s3_answer_ok(const struct s3_req *r, const struct s3xml *x)
{
	if (r->hresp.curl_code != CURLE_OK)
		return 0;
	if (r->hresp.status < 200 || r->hresp.status > 299)
		return 0;
	return strcmp(x->root, "Error") != 0;
}

static void
s3_req_done(void *arg, const struct http_request *req,
    struct http_response *resp)
{
	struct s3_req *r = arg;
	struct s3_op *op = r->op;
	struct s3_client *c = op->c;
	struct s3xml x;
	struct errbuf eb;

	(void)req;
	errbuf_clear(&eb);
	s3xml_parse(resp->body.buf, resp->body.len, &x);
	if (resp->curl_code != CURLE_OK || resp->status >= 500)
		c->streak++;
	else
		c->streak = 0;
	if (s3_answer_ok(r, &x)) {
		if (c->tokens < S3_RETRY_TOKENS)
			c->tokens++;
		if (s3_req_success(r, &x, &eb) == 0) {
			enum s3_kind kind = r->kind;

			s3_req_free(r);
			op->inflight--;
			if (kind == REQ_MPU_CREATE || kind == REQ_MPU_PART) {
				if (kind == REQ_MPU_PART)
					op->parts_done++;
				s3_mpu_next(op);
			} else if (kind == REQ_MPU_ABORT) {
				op->aborted = 1;
				s3_op_end(op);
			}
			else if (op->failed)
				s3_op_fail(op, &op->eb);
			else
				s3_op_end(op);
			return;
		}
		/* a wrong ETag or checksum: the bytes may be bad, send again */
		if (r->attempts < c->cfg->max_attempts && r->kind != REQ_HEAD &&
		    c->tokens >= S3_RETRY_COST) {
			c->tokens -= S3_RETRY_COST;
			log_debug("%s: sending it again", eb.msg);
			s3_req_wait(c, r, s3_backoff_ms(r->attempts));
			return;
		}
	} else if (r->kind == REQ_HEAD && resp->curl_code == CURLE_OK &&
	    resp->status == 404) {
		op->status = 404;
		s3_req_free(r);
		op->inflight--;
		s3_op_end(op);
		return;
	} else if (r->kind == REQ_MPU_ABORT && resp->curl_code == CURLE_OK &&
	    resp->status == 404) {
		op->aborted = 1;
		s3_req_free(r);
		op->inflight--;
		s3_op_end(op);
		return;
	} else {
		s3_req_error(r, &x, &eb);
		if (s3_region_moved(r, &x)) {
			s3_req_send(c, r);
			return;
		}
		if (s3_req_retry(c, r, &x, &eb))
			return;
	}
	s3_req_free(r);
	op->inflight--;
	if (op->failed && op->aborting && op->inflight == 0) {
		/* the abort itself failed: the run records and retries it */
		log_warn("%s", eb.msg);
		s3_op_end(op);
		return;
	}
	s3_op_fail(op, &eb);
}

/* ---- multipart ---- */

static uint64_t
s3_part_size(const struct config *cfg, uint64_t size)
{
	uint64_t part = cfg->part_size;
	uint64_t min = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;

	if (part < min)
		part = (min + S3_MIB - 1) / S3_MIB * S3_MIB;
	return part;
}

/* Start parts while there is room; complete when all are in. */
static void
s3_mpu_next(struct s3_op *op)
{
	struct s3_client *c = op->c;
	struct errbuf eb;

	errbuf_clear(&eb);
	if (op->failed) {
		s3_op_fail(op, &op->eb);
		return;
	}
	while (op->next_part <= op->nparts &&
	    op->inflight < c->cfg->concurrency) {
		struct s3_req *r = s3_req_new(op, REQ_MPU_PART);

		r->part = op->next_part++;
		r->off = (off_t)((uint64_t)(r->part - 1) * op->part_size);
		r->len = op->size - r->off < (off_t)op->part_size ?
		    op->size - r->off : (off_t)op->part_size;
		if (s3_req_hash(r, op->whole, &eb) == -1) {
			s3_req_free(r);
			s3_op_fail(op, &eb);
			return;
		}
		op->inflight++;
		s3_req_send(c, r);
		if (op->failed)
			return;
	}
	if (op->parts_done == op->nparts && op->inflight == 0) {
		struct s3_req *r = s3_req_new(op, REQ_MPU_COMPLETE);
		unsigned int len;

		EVP_DigestFinal_ex(op->whole, op->put->sha256, &len);
		s3_complete_body(op, &r->mem);
		s3_req_hash(r, NULL, &eb);
		op->inflight++;
		s3_req_send(c, r);
	}
}

/* ---- ops ---- */

static struct s3_op *
s3_op_new(struct s3_client *c, const char *bucket, const char *key)
{
	struct s3_op *op = xcalloc(1, sizeof(*op));

	op->c = c;
	op->bucket = bucket;
	op->key = key;
	op->fd = -1;
	errbuf_clear(&op->eb);
	c->busy++;
	return op;
}

int
s3_put_start(struct s3_client *c, struct s3_put *put, struct errbuf *eb)
{
	struct s3_op *op;
	struct s3_req *r;

	put->failed = 0;
	put->parts = 0;
	put->etag[0] = '\0';
	errbuf_clear(&put->eb);
	op = s3_op_new(c, put->bucket, put->key);
	op->put = put;
	op->fd = put->fd;
	op->size = put->fd >= 0 ? put->size : (off_t)put->len;
	put->op = op;
	if (put->fd >= 0 && (uint64_t)op->size >= c->cfg->multipart_threshold) {
		op->part_size = s3_part_size(c->cfg, (uint64_t)op->size);
		op->nparts = (int)(((uint64_t)op->size + op->part_size - 1) /
		    op->part_size);
		op->parts = xcalloc((size_t)op->nparts, sizeof(*op->parts));
		op->next_part = 1;
		op->whole = EVP_MD_CTX_new();
		EVP_DigestInit_ex(op->whole, EVP_sha256(), NULL);
		r = s3_req_new(op, REQ_MPU_CREATE);
	} else {
		r = s3_req_new(op, REQ_PUT);
		r->len = op->size;
		if (s3_req_hash(r, NULL, eb) == -1) {
			s3_req_free(r);
			c->busy--;
			put->op = NULL;
			free(op);
			return -1;
		}
	}
	op->inflight++;
	s3_req_send(c, r);
	return 0;
}

static void
s3_start_due(struct s3_client *c)
{
	double now = now_ms();
	struct s3_req *r;

	while ((r = c->waiting) != NULL && r->due <= now) {
		c->waiting = r->next;
		r->next = NULL;
		s3_req_send(c, r);
	}
}

int
s3_client_run(struct s3_client *c, long timeout_ms, struct errbuf *eb)
{
	long wait = timeout_ms;
	int ended;

	s3_start_due(c);
	if (c->waiting != NULL) {
		double until = c->waiting->due - now_ms();

		if (until < 0)
			until = 0;
		if (until < (double)wait)
			wait = (long)until + 1;
	}
	if (http_pool_pending(c->pool) > 0) {
		if (http_pool_run(c->pool, wait, eb) == -1)
			return -1;
	} else if (c->ended == 0 && wait > 0)
		usleep((useconds_t)(wait > 1000 ? 1000 : wait) * 1000);
	s3_start_due(c);
	ended = c->ended;
	c->ended = 0;
	return ended;
}

static int
s3_op_wait(struct s3_client *c, struct s3_op *op, struct errbuf *eb)
{
	while (!op->finished) {
		if (s3_client_run(c, 1000, eb) == -1)
			return -1;
	}
	return 0;
}

static void
s3_wait_done(struct s3_put *put)
{
	*(int *)put->arg = 1;
}

int
s3_put_wait(struct s3_client *c, struct s3_put *put, struct errbuf *eb)
{
	int done = 0;

	put->done = s3_wait_done;
	put->arg = &done;
	if (s3_put_start(c, put, eb) == -1)
		return -1;
	while (!done) {
		if (s3_client_run(c, 1000, eb) == -1)
			return -1;
	}
	if (put->failed) {
		*eb = put->eb;
		return -1;
	}
	return 0;
}

/* HEAD and abort ops have no put: free them here once finished. */
static int
s3_simple(struct s3_client *c, struct s3_op *op, enum s3_kind kind,
    struct errbuf *eb)
{
	struct s3_req *r = s3_req_new(op, kind);

	op->inflight++;
	if (kind == REQ_MPU_ABORT)
		op->aborting = 1;
	s3_req_send(c, r);
	return s3_op_wait(c, op, eb);
}

int
s3_head(struct s3_client *c, const char *bucket, const char *key,
    uint64_t *size, char *etag, size_t etagsz, struct errbuf *eb)
{
	struct s3_op *op = s3_op_new(c, bucket, key);
	int rc = -1;

	if (s3_simple(c, op, REQ_HEAD, eb) == -1)
		goto out;
	if (op->failed) {
		*eb = op->eb;
		goto out;
	}
	rc = op->status == 404 ? 0 : 1;
	if (rc == 1 && size != NULL)
		*size = op->head_size;
	if (rc == 1 && etag != NULL)
		snprintf(etag, etagsz, "%s", op->etag);
 out:
	free(op);
	return rc;
}

int
s3_abort_multipart(struct s3_client *c, const char *bucket, const char *key,
    const char *upload_id, struct errbuf *eb)
{
	struct s3_op *op = s3_op_new(c, bucket, key);
	int rc = -1;

	op->upload_id = xstrdup(upload_id);
	if (s3_simple(c, op, REQ_MPU_ABORT, eb) == -1)
		goto out;
	if (op->failed) {
		*eb = op->eb;
		goto out;
	}
	rc = 0;
 out:
	free(op->upload_id);
	free(op);
	return rc;
}

/*
 * The ETag this client's upload of fd would get: the MD5 of the bytes for
 * a single PUT, the MD5 of the parts' MD5s and "-N" for a multipart one.
 */
static int
s3_expected_etag(struct s3_client *c, int fd, off_t size, struct strbuf *out,
    struct errbuf *eb)
{
	static unsigned char buf[1 << 18];
	EVP_MD_CTX *part = EVP_MD_CTX_new(), *all = EVP_MD_CTX_new();
	uint64_t psize = (uint64_t)size >= c->cfg->multipart_threshold ?
	    s3_part_size(c->cfg, (uint64_t)size) : (uint64_t)size + 1;
	unsigned char md[16];
	uint64_t inpart = 0;
	off_t pos = 0;
	int nparts = 0, rc = -1;
	ssize_t n;

	EVP_DigestInit_ex(part, EVP_md5(), NULL);
	EVP_DigestInit_ex(all, EVP_md5(), NULL);
	while (pos < size) {
		size_t want = sizeof(buf);

		if ((uint64_t)want > psize - inpart)
			want = (size_t)(psize - inpart);
		if ((off_t)want > size - pos)
			want = (size_t)(size - pos);
		if ((n = pread(fd, buf, want, pos)) <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			errbuf_setsys(eb, ERR_IO, "read archive");
			goto out;
		}
		EVP_DigestUpdate(part, buf, (size_t)n);
		pos += n;
		inpart += (uint64_t)n;
		if (inpart == psize && (uint64_t)size >=
		    c->cfg->multipart_threshold) {
			EVP_DigestFinal_ex(part, md, NULL);
			EVP_DigestUpdate(all, md, 16);
			EVP_DigestInit_ex(part, EVP_md5(), NULL);
			nparts++;
			inpart = 0;
		}
	}
	if ((uint64_t)size < c->cfg->multipart_threshold) {
		EVP_DigestFinal_ex(part, md, NULL);
		strbuf_addhex(out, md, 16);
	} else {
		if (inpart > 0) {
			EVP_DigestFinal_ex(part, md, NULL);
			EVP_DigestUpdate(all, md, 16);
			nparts++;
		}
		EVP_DigestFinal_ex(all, md, NULL);
		strbuf_addhex(out, md, 16);
		strbuf_addf(out, "-%d", nparts);
	}
	rc = 0;
 out:
	EVP_MD_CTX_free(part);
	EVP_MD_CTX_free(all);
	return rc;
}

int
s3_object_matches(struct s3_client *c, const char *bucket, const char *key,
    int fd, off_t size, struct errbuf *eb)
{
	struct strbuf want = STRBUF_INIT;
	char etag[80];
	uint64_t have = 0;
	int rc;

	rc = s3_head(c, bucket, key, &have, etag, sizeof(etag), eb);
	if (rc != 1)
		return rc;
	if (have != (uint64_t)size)
		return 0;
	/* SSE-KMS ETags are no MD5s: the size is all S3 tells then */
	if (c->cfg->sse != NULL && strcmp(c->cfg->sse, "aws:kms") == 0)
		return 1;
	if (s3_expected_etag(c, fd, size, &want, eb) == -1)
		return -1;
	rc = strcasecmp(want.buf, etag) == 0 || etag[0] == '\0';
	strbuf_release(&want);
	return rc;
}
