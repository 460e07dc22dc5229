/*
 * es: _bulk indexing of manifest documents, and the index template.
 *
 * A bulk call goes in rounds. Each round sends the documents still
 * pending, in requests of at most es->max_bytes, and sorts every answer:
 * an item that is in, or refused for good, is done; an item the server
 * could not take for now (429, 5xx), or a request that got no readable
 * answer, stays pending for the next round, after a backoff. Re-sending
 * is always safe: every document has its own _id, so it overwrites.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "es.h"
#include "http.h"
#include "log.h"
#include "strbuf.h"

#define ES_BACKOFF_BASE_MS	500.0
#define ES_BACKOFF_MAX_MS	8000.0
#define ES_MAX_ANSWER		(64u * 1024 * 1024)
#define ES_TEMPLATE_PRIORITY	200
#define ES_REASON_MAX		300	/* bytes of an error reason kept */

/* Only what bulk answers are read for: status and error of each item. */
#define ES_BULK_PATH	"/_bulk?filter_path=errors,items.*.status," \
			"items.*.error.type,items.*.error.reason"

struct es_client {
	struct http_pool *pool;
	char		*base;		/* scheme://host:port, no secrets */
	char		*bulk_what;	/* "POST '<base>/_bulk'" for messages */
	char		*index;
	char		*index_path;	/* the index name, percent-encoded */
	char		*auth;		/* "Authorization: ..." or NULL */
	char		*ca_bundle;
	int		 template_done;
};

/* The state of one es_bulk() call. */
struct es_bulk {
	struct es_client	*es;
	const struct es_doc	*docs;
	enum es_item		*result;
	unsigned char		*done;		/* per document: outcome set */
	size_t			*pending;	/* documents this round sends */
	size_t			 npending;
	size_t			 max_bytes;	/* of one request's body */
	struct errbuf		 first;		/* first failure, for eb */
};

/* What one request's answer means for its documents. */
enum es_verdict {
	ES_SENT,	/* answered; the items say what happened */
	ES_AGAIN,	/* answered, not usably: send the documents again */
	ES_DOWN,	/* no answer at all: send them again, later */
	ES_REFUSED,	/* the whole request was refused for good */
	ES_BROKEN,	/* internal error (eb) */
};

static double
es_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/*
 * Wait ms before a retry. The pool may be shared with other transfers
 * (uploads): keep driving it meanwhile, so they do not stall. -1 (eb)
 * when the pool failed.
 */
static int
es_wait(struct es_client *es, double ms, struct errbuf *eb)
{
	double until = es_now_ms() + ms, left;
	struct timespec ts;

	while ((left = until - es_now_ms()) > 0) {
		if (http_pool_pending(es->pool) > 0) {
			if (http_pool_run(es->pool, (long)left + 1, eb) == -1)
				return -1;
			continue;
		}
		ts.tv_sec = (time_t)(left / 1000.0);
		ts.tv_nsec = (long)((left - (double)ts.tv_sec * 1000.0) * 1e6);
		(void)nanosleep(&ts, NULL);	/* EINTR: the loop goes on */
	}
	return 0;
}

/* "Equal jitter": at least half the exponential step, so 429s back off. */
static double
es_backoff_ms(int attempt)
{
	int shift = attempt - 1 < 16 ? attempt - 1 : 16;
	double cap = ES_BACKOFF_BASE_MS * (double)(1u << shift);
	uint32_t rnd = 0;

	if (cap > ES_BACKOFF_MAX_MS)
		cap = ES_BACKOFF_MAX_MS;
	(void)RAND_bytes((unsigned char *)&rnd, sizeof(rnd));
	return cap / 2 + cap / 2 * ((double)rnd / 4294967295.0);
}

static int
es_retryable_status(long status)
{
	return status == 408 || status == 429 || status >= 500;
}

/* ElasticSearch's rules for index names (lower case, no separators). */
static int
es_index_valid(const char *name)
{
	size_t len = strlen(name);
	const unsigned char *p;

	if (len == 0 || len > 255 || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0 || strchr("-_+", name[0]) != NULL)
		return 0;
	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		if (*p <= ' ' || *p == 0x7f || (*p >= 'A' && *p <= 'Z') ||
		    strchr("\\/*?\"<>|,#:", *p) != NULL)
			return 0;
	}
	return 1;
}

/* Percent-encode every byte but the unreserved ones (index names). */
static char *
es_path_encode(const char *s)
{
	static const char hexd[] = "0123456789ABCDEF";
	struct strbuf sb = STRBUF_INIT;
	const unsigned char *p;

	strbuf_init(&sb, strlen(s));
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr("-_.~", *p) != NULL)
			strbuf_addch(&sb, *p);
		else {
			strbuf_addch(&sb, '%');
			strbuf_addch(&sb, hexd[*p >> 4]);
			strbuf_addch(&sb, hexd[*p & 15]);
		}
	}
	return strbuf_detach(&sb, NULL);
}

static char *
es_auth_header(const struct config *cfg)
{
	struct strbuf plain = STRBUF_INIT, hdr = STRBUF_INIT;
	size_t outlen;

	if (cfg->es_api_key != NULL && cfg->es_api_key[0] != '\0') {
		strbuf_addf(&hdr, "Authorization: ApiKey %s", cfg->es_api_key);
		return strbuf_detach(&hdr, NULL);
	}
	if (cfg->es_username == NULL || cfg->es_password == NULL)
		return NULL;
	strbuf_addf(&plain, "%s:%s", cfg->es_username, cfg->es_password);
	strbuf_adds(&hdr, "Authorization: Basic ");
	outlen = 4 * ((plain.len + 2) / 3);
	strbuf_grow(&hdr, outlen + 1);
	EVP_EncodeBlock((unsigned char *)hdr.buf + hdr.len,
	    (const unsigned char *)plain.buf, (int)plain.len);
	hdr.len += outlen;
	hdr.buf[hdr.len] = '\0';
	strbuf_wipe(&plain);
	return strbuf_detach(&hdr, NULL);
}

struct es_client *
es_client_new(const struct config *cfg, struct http_pool *pool,
    struct errbuf *eb)
{
	struct es_client *es;
	const char *host = cfg->es_host != NULL ? cfg->es_host : "localhost";
	const char *scheme = cfg->es_scheme != NULL ? cfg->es_scheme : "http";
	int v6 = strchr(host, ':') != NULL && host[0] != '[';

	if (cfg->es_index == NULL || !es_index_valid(cfg->es_index)) {
		errbuf_set(eb, ERR_CONFIG, "ELASTICSEARCH_LOGS_INDEX: '%s' is "
		    "not a valid index name (lower case, no \\/*?\"<>|,#: "
		    "or spaces, not starting with -_+)",
		    cfg->es_index != NULL ? cfg->es_index : "");
		return NULL;
	}
	es = xcalloc(1, sizeof(*es));
	es->pool = pool;
	es->base = xasprintf("%s://%s%s%s:%d", scheme, v6 ? "[" : "",
	    host, v6 ? "]" : "", cfg->es_port);
	es->bulk_what = xasprintf("POST '%s/_bulk'", es->base);
	es->index = xstrdup(cfg->es_index);
	es->index_path = es_path_encode(cfg->es_index);
	es->auth = es_auth_header(cfg);
	if (cfg->es_ca_bundle != NULL)
		es->ca_bundle = xstrdup(cfg->es_ca_bundle);
	return es;
}

void
es_client_free(struct es_client *es)
{
	if (es == NULL)
		return;
	if (es->auth != NULL) {
		OPENSSL_cleanse(es->auth, strlen(es->auth));
		free(es->auth);
	}
	free(es->base);
	free(es->bulk_what);
	free(es->index);
	free(es->index_path);
	free(es->ca_bundle);
	free(es);
}

/* TLS failures that retrying cannot mend. */
static int
es_refused_tls(int code)
{
	return code == CURLE_PEER_FAILED_VERIFICATION ||
	    code == CURLE_SSL_CACERT_BADFILE || code == CURLE_SSL_CERTPROBLEM ||
	    code == CURLE_SSL_ISSUER_ERROR;
}

/*
 * One request, no retry. 0 when an answer was read (any status), 1 on a
 * transport failure (eb, ERR_REMOTE), 2 when the server's certificate was
 * refused (eb; retrying cannot help), -1 when the pool failed (eb).
 */
static int
es_request(struct es_client *es, const char *method, const char *path,
    const struct strbuf *body, const char *ctype,
    struct http_response *resp, struct errbuf *eb)
{
	struct http_request req;
	struct errbuf herr;
	const char *hdrs[2];
	char *url, *ctype_hdr = NULL;
	double t0 = es_now_ms();
	int rc;

	url = xasprintf("%s%s", es->base, path);
	http_request_init(&req);
	req.method = method;
	req.url = url;
	req.headers = hdrs;
	if (body != NULL) {
		ctype_hdr = xasprintf("Content-Type: %s", ctype);
		hdrs[req.nheaders++] = ctype_hdr;
		req.body = body->buf;
		req.body_len = body->len;
	}
	if (es->auth != NULL)
		hdrs[req.nheaders++] = es->auth;
	req.timeout_ms = ES_REQUEST_TIMEOUT_MS;
	req.connect_timeout_ms = ES_CONNECT_TIMEOUT_MS;
	req.ca_bundle = es->ca_bundle;
	req.max_body = ES_MAX_ANSWER;
	log_debug("elasticsearch: %s '%s': %zu bytes", method, url,
	    body != NULL ? body->len : 0);
	errbuf_clear(&herr);
	rc = http_pool_do(es->pool, &req, resp, &herr);
	if (rc == 0)
		log_debug("elasticsearch: %s '%s': HTTP %ld in %.0f ms", method,
		    url, resp->status, es_now_ms() - t0);
	else if (es_refused_tls(resp->curl_code)) {
		/* a certificate we refuse will be refused again: no retry */
		errbuf_set(eb, ERR_REMOTE, "%s '%s': %s", method, url,
		    resp->error);
		rc = 2;
	} else if (resp->curl_code != 0) {
		errbuf_set(eb, ERR_REMOTE, "%s '%s': %s", method, url,
		    resp->error);
		/* Sent, no answer: ambiguous, but _id makes re-sending safe. */
		log_debug("%s%s", eb->msg, resp->request_sent ?
		    " (sent, answer lost)" : "");
		rc = 1;
	} else {
		*eb = herr;
		errbuf_prefix(eb, "%s '%s'", method, url);
	}
	free(ctype_hdr);
	free(url);
	return rc;
}

/*
 * Describe a refusal: "<what>: HTTP 400 type: reason", from
 * ElasticSearch's {"error":{"type","reason"}} when it is there.
 */
static void
es_answer_error(const struct http_response *resp, struct errbuf *eb,
    const char *what)
{
	enum err_kind kind = resp->status == 401 || resp->status == 403 ?
	    ERR_AUTH : ERR_REMOTE;
	const cJSON *err, *type, *reason;
	cJSON *root;

	root = cJSON_ParseWithLength(resp->body.buf, resp->body.len);
	err = cJSON_GetObjectItemCaseSensitive(root, "error");
	type = cJSON_GetObjectItemCaseSensitive(err, "type");
	reason = cJSON_GetObjectItemCaseSensitive(err, "reason");
	if (cJSON_IsString(type))
		errbuf_set(eb, kind, "%s: HTTP %ld %s: %.*s", what,
		    resp->status, type->valuestring, ES_REASON_MAX,
		    cJSON_IsString(reason) ? reason->valuestring : "");
	else
		errbuf_set(eb, kind, "%s: HTTP %ld", what, resp->status);
	eb->http_status = resp->status;
	cJSON_Delete(root);
}

/*
 * An idempotent request, retried on transport failures and 408/429/5xx
 * within ES_MAX_ATTEMPTS and ES_RETRY_BUDGET_MS. 0 with the last answer
 * (any status), -1 with eb when none came or the pool failed.
 */
static int
es_call(struct es_client *es, const char *method, const char *path,
    const struct strbuf *body, struct http_response *resp,
    struct errbuf *eb)
{
	double deadline = es_now_ms() + ES_RETRY_BUDGET_MS, delay;
	int attempt, rc;

	for (attempt = 1;; attempt++) {
		rc = es_request(es, method, path, body, "application/json",
		    resp, eb);
		if (rc == -1 || rc == 2 || (rc == 0 &&
		    !es_retryable_status(resp->status)))
			break;
		delay = es_backoff_ms(attempt);
		if (attempt >= ES_MAX_ATTEMPTS ||
		    es_now_ms() + delay > deadline)
			break;
		if (es_wait(es, delay, eb) == -1)
			return -1;
	}
	return rc == 0 ? 0 : -1;
}

/* Add {"type": type} at a dotted field name, making the objects between. */
static void
es_map_field(cJSON *props, const char *dotted, const char *type)
{
	char name[64];
	const char *dot;
	cJSON *obj;
	size_t len;

	while ((dot = strchr(dotted, '.')) != NULL) {
		len = (size_t)(dot - dotted);
		if (len >= sizeof(name))
			return;
		memcpy(name, dotted, len);
		name[len] = '\0';
		obj = cJSON_GetObjectItemCaseSensitive(props, name);
		if (obj == NULL)
			obj = cJSON_AddObjectToObject(props, name);
		if ((props = cJSON_GetObjectItemCaseSensitive(obj,
		    "properties")) == NULL)
			props = cJSON_AddObjectToObject(obj, "properties");
		dotted = dot + 1;
	}
	obj = cJSON_AddObjectToObject(props, dotted);
	cJSON_AddStringToObject(obj, "type", type);
}

/*
 * The template's body: SPEC's @timestamp as a date; the identifiers one
 * looks documents up by as keywords (dynamic mapping would make them text,
 * with a keyword only up to 256 characters); sizes and offsets as longs.
 */
static char *
es_template_body(const struct es_client *es, int legacy)
{
	static const char *const fields[][2] = {
		{ "@timestamp", "date" },
		{ "host.name", "keyword" },
		{ "s3batch.run_id", "keyword" },
		{ "s3batch.tool", "keyword" },
		{ "s3batch.tar.data_offset", "long" },
		{ "aws.s3.bucket.name", "keyword" },
		{ "aws.s3.object.key", "keyword" },
		{ "file.path", "keyword" },
		{ "file.path_b64", "keyword" },
		{ "file.size", "long" },
		{ "file.hash.sha256", "keyword" },
		{ "url.full", "keyword" },
	};
	cJSON *root, *pats, *tmpl, *props;
	char *pattern, *out;
	size_t i;

	root = cJSON_CreateObject();
	pats = cJSON_AddArrayToObject(root, "index_patterns");
	cJSON_AddItemToArray(pats, cJSON_CreateString(es->index));
	pattern = xasprintf("%s-*", es->index);
	cJSON_AddItemToArray(pats, cJSON_CreateString(pattern));
	free(pattern);
	if (legacy) {
		cJSON_AddNumberToObject(root, "order", ES_TEMPLATE_PRIORITY);
		tmpl = root;
	} else {
		cJSON_AddNumberToObject(root, "priority", ES_TEMPLATE_PRIORITY);
		tmpl = cJSON_AddObjectToObject(root, "template");
	}
	props = cJSON_AddObjectToObject(cJSON_AddObjectToObject(tmpl,
	    "mappings"), "properties");
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		es_map_field(props, fields[i][0], fields[i][1]);
	if ((out = cJSON_PrintUnformatted(root)) == NULL)
		abort();	/* cJSON fails only without memory */
	cJSON_Delete(root);
	return out;
}

/* Servers before Elasticsearch 7.8 have no composable templates. */
static int
es_no_such_api(const struct http_response *resp)
{
	return resp->status == 404 || resp->status == 405 ||
	    (resp->status == 400 && resp->body.buf != NULL &&
	    strstr(resp->body.buf, "no handler found") != NULL);
}

static int
es_put_template(struct es_client *es, int legacy,
    struct http_response *resp, struct errbuf *eb)
{
	struct strbuf body = STRBUF_INIT;
	char *json, *path;
	int rc;

	json = es_template_body(es, legacy);
	strbuf_adds(&body, json);
	free(json);
	path = xasprintf("/%s/%s", legacy ? "_template" : "_index_template",
	    es->index_path);
	rc = es_call(es, "PUT", path, &body, resp, eb);
	free(path);
	strbuf_release(&body);
	return rc;
}

int
es_ensure_template(struct es_client *es, struct errbuf *eb)
{
	struct http_response resp;
	char *what = NULL;
	int legacy = 0, rc = -1;

	if (es->template_done)
		return 0;
	http_response_init(&resp);
	if (es_put_template(es, 0, &resp, eb) == -1)
		goto out;
	if (es_no_such_api(&resp)) {
		log_debug("elasticsearch: no _index_template API, using "
		    "_template");
		legacy = 1;
		if (es_put_template(es, 1, &resp, eb) == -1)
			goto out;
	}
	if (resp.status < 200 || resp.status > 299) {
		what = xasprintf("PUT '%s/%s/%s'", es->base, legacy ?
		    "_template" : "_index_template", es->index_path);
		es_answer_error(&resp, eb, what);
		goto out;
	}
	log_debug("elasticsearch: index template '%s' in place", es->index);
	es->template_done = 1;
	rc = 0;
 out:
	free(what);
	http_response_release(&resp);
	return rc;
}

void
es_doc_id(const char *archive_key, const char *entry_name, size_t name_len,
    char hex[65])
{
	static const char hexd[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	EVP_MD_CTX *ctx;

	/* Only allocation can fail here; without memory nothing can go on. */
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, archive_key, strlen(archive_key) + 1) != 1 ||
	    EVP_DigestUpdate(ctx, entry_name, name_len) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		abort();
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < mdlen; i++) {
		hex[2 * i] = hexd[md[i] >> 4];
		hex[2 * i + 1] = hexd[md[i] & 15];
	}
	hex[64] = '\0';
}

/* Append s as a JSON string, quotes included. */
static void
es_add_json_string(struct strbuf *sb, const char *s)
{
	cJSON *str = cJSON_CreateStringReference(s);
	char *out;

	if (str == NULL || (out = cJSON_PrintUnformatted(str)) == NULL)
		abort();	/* cJSON fails only without memory */
	strbuf_adds(sb, out);
	cJSON_free(out);
	cJSON_Delete(str);
}

/* Bytes a document takes in the NDJSON body (action line included). */
static size_t
es_doc_bytes(const struct es_client *es, const struct es_doc *d)
{
	/* {"index":{"_index":"","_id":""}}\n + document + \n, escapes aside */
	return 33 + strlen(es->index) + strlen(d->id) + d->json_len + 1;
}

/* How many of the pending documents from position at go in one request. */
static size_t
es_bulk_chunk(const struct es_bulk *b, size_t at)
{
	size_t cnt = 0, bytes = 0, sz;

	while (at + cnt < b->npending) {
		sz = es_doc_bytes(b->es, &b->docs[b->pending[at + cnt]]);
		if (cnt > 0 && bytes + sz > b->max_bytes)
			break;
		bytes += sz;
		cnt++;
	}
	return cnt;
}

static void
es_bulk_body(const struct es_bulk *b, const size_t *idx, size_t cnt,
    struct strbuf *body)
{
	const struct es_doc *d;
	size_t i;

	for (i = 0; i < cnt; i++) {
		d = &b->docs[idx[i]];
		strbuf_adds(body, "{\"index\":{\"_index\":");
		es_add_json_string(body, b->es->index);
		strbuf_adds(body, ",\"_id\":");
		es_add_json_string(body, d->id);
		strbuf_adds(body, "}}\n");
		strbuf_add(body, d->json, d->json_len);
		strbuf_addch(body, '\n');
	}
}

static void
es_bulk_note(struct es_bulk *b, const struct errbuf *eb)
{
	if (b->first.kind == ERR_NONE)
		b->first = *eb;
}

static void
es_bulk_final(struct es_bulk *b, size_t i, enum es_item outcome)
{
	b->result[i] = outcome;
	b->done[i] = 1;
}

/* Sort one item of a bulk answer: in, refused for good, or once more. */
static void
es_bulk_item(struct es_bulk *b, size_t i, const cJSON *item)
{
	const cJSON *op = item != NULL ? item->child : NULL;
	const cJSON *status, *err, *type, *reason;
	struct errbuf eb;
	long st;

	status = cJSON_GetObjectItemCaseSensitive(op, "status");
	if (!cJSON_IsNumber(status))
		return;		/* unreadable: send it again */
	st = status->valueint;	/* saturated: 1e999 must not reach a cast */
	if (st >= 200 && st <= 299) {
		es_bulk_final(b, i, ES_ITEM_OK);
		return;
	}
	err = cJSON_GetObjectItemCaseSensitive(op, "error");
	type = cJSON_GetObjectItemCaseSensitive(err, "type");
	reason = cJSON_GetObjectItemCaseSensitive(err, "reason");
	errbuf_set(&eb, ERR_REMOTE, "elasticsearch: document '%s' in '%s': "
	    "HTTP %ld %s: %.*s", b->docs[i].id, b->es->index, st,
	    cJSON_IsString(type) ? type->valuestring : "error",
	    ES_REASON_MAX,
	    cJSON_IsString(reason) ? reason->valuestring : "(no reason)");
	eb.http_status = st;
	if (st == 429 || st >= 500) {
		log_debug("%s (will retry)", eb.msg);
		es_bulk_note(b, &eb);
		return;
	}
	log_warn("%s", eb.msg);
	es_bulk_final(b, i, ES_ITEM_REJECTED);
}

/* Read a 2xx bulk answer; -1 when it cannot be read (send all again). */
static int
es_bulk_answer(struct es_bulk *b, const size_t *idx, size_t cnt,
    const struct http_response *resp, struct errbuf *eb)
{
	const cJSON *items, *item;
	cJSON *root;
	size_t k = 0;

	root = cJSON_ParseWithLength(resp->body.buf, resp->body.len);
	items = cJSON_GetObjectItemCaseSensitive(root, "items");
	if (!cJSON_IsArray(items) ||
	    (size_t)cJSON_GetArraySize(items) != cnt) {
		errbuf_set(eb, ERR_REMOTE, "%s: HTTP %ld with an unreadable "
		    "answer (%zu bytes)", b->es->bulk_what, resp->status,
		    resp->body.len);
		cJSON_Delete(root);
		return -1;
	}
	cJSON_ArrayForEach(item, items)
		es_bulk_item(b, idx[k++], item);
	cJSON_Delete(root);
	return 0;
}

/* A whole request refused for good; 413 only asks for smaller ones. */
static enum es_verdict
es_bulk_refused(struct es_bulk *b, const size_t *idx, size_t cnt,
    const struct http_response *resp, struct errbuf *eb)
{
	size_t i;

	es_answer_error(resp, eb, b->es->bulk_what);
	if (resp->status == 413 && cnt > 1) {
		b->max_bytes = b->max_bytes / 2 > 1 ? b->max_bytes / 2 : 1;
		log_debug("%s: requests of at most %zu bytes from now on",
		    eb->msg, b->max_bytes);
		return ES_AGAIN;
	}
	if (resp->status == 413) {
		log_warn("elasticsearch: document '%s' in '%s': too large: %s",
		    b->docs[idx[0]].id, b->es->index, eb->msg);
		es_bulk_final(b, idx[0], ES_ITEM_REJECTED);
		return ES_REFUSED;
	}
	for (i = 0; i < cnt; i++)
		es_bulk_final(b, idx[i], ES_ITEM_UNSENT);
	return ES_REFUSED;
}

/* Send cnt documents in one request and sort what came back. */
static enum es_verdict
es_bulk_send(struct es_bulk *b, const size_t *idx, size_t cnt)
{
	struct strbuf body = STRBUF_INIT;
	struct http_response resp;
	struct errbuf eb;
	enum es_verdict v;
	int rc;

	errbuf_clear(&eb);
	http_response_init(&resp);
	es_bulk_body(b, idx, cnt, &body);
	log_debug("elasticsearch: bulk of %zu documents, %zu bytes", cnt,
	    body.len);
	rc = es_request(b->es, "POST", ES_BULK_PATH, &body,
	    "application/x-ndjson", &resp, &eb);
	if (rc == -1)
		v = ES_BROKEN;
	else if (rc == 2) {
		for (size_t k = 0; k < cnt; k++)
			es_bulk_final(b, idx[k], ES_ITEM_UNSENT);
		v = ES_REFUSED;
	} else if (rc == 1)
		v = ES_DOWN;
	else if (resp.status >= 200 && resp.status <= 299)
		v = es_bulk_answer(b, idx, cnt, &resp, &eb) == 0 ?
		    ES_SENT : ES_AGAIN;
	else if (es_retryable_status(resp.status)) {
		es_answer_error(&resp, &eb, b->es->bulk_what);
		v = ES_AGAIN;
	} else
		v = es_bulk_refused(b, idx, cnt, &resp, &eb);
	if (v == ES_BROKEN)
		b->first = eb;
	else if (eb.kind != ERR_NONE)
		es_bulk_note(b, &eb);
	http_response_release(&resp);
	strbuf_release(&body);
	return v;
}

/*
 * Send every pending document once. After a request that got no answer,
 * the rest wait for the next round: the server is likely down, and each
 * try could cost a whole timeout. -1 on an internal error.
 */
static int
es_bulk_round(struct es_bulk *b)
{
	size_t at = 0, cnt, i, keep = 0;
	enum es_verdict v;

	while (at < b->npending) {
		cnt = es_bulk_chunk(b, at);
		v = es_bulk_send(b, &b->pending[at], cnt);
		if (v == ES_BROKEN)
			return -1;
		at += cnt;
		if (v == ES_DOWN)
			break;
	}
	for (i = 0; i < b->npending; i++) {
		if (!b->done[b->pending[i]])
			b->pending[keep++] = b->pending[i];
	}
	b->npending = keep;
	return 0;
}

/* When documents are left UNSENT, say how many and the first cause. */
static void
es_bulk_report(const struct es_bulk *b, size_t n, struct errbuf *eb)
{
	size_t i, unsent = 0;

	for (i = 0; i < n; i++)
		unsent += b->result[i] == ES_ITEM_UNSENT;
	if (unsent == 0)
		return;
	errbuf_set(eb, b->first.kind != ERR_NONE ? b->first.kind :
	    ERR_REMOTE, "elasticsearch: %zu of %zu documents not indexed: %s",
	    unsent, n, b->first.msg);
	eb->http_status = b->first.http_status;
}

/* A document the caller got wrong would break the whole NDJSON request. */
static int
es_bulk_check(const struct es_doc *docs, size_t n, struct errbuf *eb)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (docs[i].id == NULL || docs[i].json == NULL ||
		    docs[i].json_len == 0 ||
		    memchr(docs[i].json, '\n', docs[i].json_len) != NULL) {
			errbuf_set(eb, ERR_INTERNAL, "elasticsearch: document "
			    "%zu is not one line of JSON with an id", i);
			return -1;
		}
	}
	return 0;
}

int
es_bulk(struct es_client *es, const struct es_doc *docs, size_t n,
    enum es_item *result, struct errbuf *eb)
{
	struct es_bulk b;
	double deadline = es_now_ms() + ES_RETRY_BUDGET_MS, delay;
	int attempt, rc = -1;
	size_t i;

	memset(&b, 0, sizeof(b));
	if (es_bulk_check(docs, n, eb) == -1)
		return -1;
	b.es = es;
	b.docs = docs;
	b.result = result;
	b.max_bytes = ES_BULK_MAX_BYTES;
	b.done = xcalloc(n > 0 ? n : 1, 1);
	b.pending = xcalloc(n > 0 ? n : 1, sizeof(*b.pending));
	for (i = 0; i < n; i++) {
		result[i] = ES_ITEM_UNSENT;
		b.pending[i] = i;
	}
	b.npending = n;
	for (attempt = 1; b.npending > 0; attempt++) {
		if (es_bulk_round(&b) == -1) {
			*eb = b.first;
			goto out;
		}
		if (b.npending == 0 || attempt >= ES_MAX_ATTEMPTS)
			break;
		delay = es_backoff_ms(attempt);
		if (es_now_ms() + delay > deadline)
			break;
		log_debug("elasticsearch: %zu documents to send again in "
		    "%.0f ms (attempt %d of %d failed)", b.npending, delay,
		    attempt, ES_MAX_ATTEMPTS);
		if (es_wait(es, delay, eb) == -1)
			goto out;
	}
	es_bulk_report(&b, n, eb);
	rc = 0;
 out:
	free(b.done);
	free(b.pending);
	return rc;
}

/* es_bulk_answer() on a body at hand, for fuzzing (see es.h). */
int
es_parse_bulk_response(const char *index, const struct es_doc *docs,
    size_t n, const char *body, size_t len, enum es_item *result,
    struct errbuf *eb)
{
	struct es_client es;
	struct es_bulk b;
	struct http_response resp;
	size_t *idx, i;
	int rc;

	memset(&es, 0, sizeof(es));
	es.index = (char *)index;
	es.bulk_what = (char *)"POST '_bulk'";
	memset(&b, 0, sizeof(b));
	b.es = &es;
	b.docs = docs;
	b.result = result;
	b.done = xcalloc(n > 0 ? n : 1, 1);
	idx = xcalloc(n > 0 ? n : 1, sizeof(*idx));
	for (i = 0; i < n; i++) {
		result[i] = ES_ITEM_UNSENT;
		idx[i] = i;
	}
	http_response_init(&resp);
	resp.status = 200;
	strbuf_add(&resp.body, body, len);
	rc = es_bulk_answer(&b, idx, n, &resp, eb);
	http_response_release(&resp);
	free(idx);
	free(b.done);
	return rc;
}
