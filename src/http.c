/*
 * http: libcurl's multi interface behind a small pool. Every transfer of a
 * run goes through one pool, so connections are reused and many transfers
 * can be in flight; curl queues what exceeds the connection limit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http.h"
#include "log.h"

#define HTTP_DEFAULT_MAX_BODY	(1024 * 1024)

struct http_xfer;

struct http_pool {
	CURLM			*multi;
	int			 pending;
	struct http_xfer	*live;	/* transfers added and not finished */
};

struct http_xfer {
	CURL			*easy;
	struct curl_slist	*hdrs;
	const struct http_request *req;
	struct http_response	*resp;
	http_done_fn		 done;
	void			*arg;
	off_t			 pos;		/* next body byte to send */
	off_t			 total;		/* body size */
	size_t			 max_body;
	struct http_xfer	*prev, *next;	/* in pool->live */
	char			 errbuf[CURL_ERROR_SIZE];
};

int
http_global_init(struct errbuf *eb)
{
	CURLcode rc;

	if ((rc = curl_global_init(CURL_GLOBAL_DEFAULT)) != CURLE_OK) {
		errbuf_set(eb, ERR_INTERNAL, "libcurl: %s", curl_easy_strerror(rc));
		return -1;
	}
	return 0;
}

void
http_global_cleanup(void)
{
	curl_global_cleanup();
}

void
http_request_init(struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	req->body_fd = -1;
}

void
http_response_init(struct http_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	strbuf_init(&resp->headers, 0);
	strbuf_init(&resp->body, 0);
}

void
http_response_release(struct http_response *resp)
{
	strbuf_release(&resp->headers);
	strbuf_release(&resp->body);
}

static void
http_response_reset(struct http_response *resp)
{
	strbuf_reset(&resp->headers);
	strbuf_reset(&resp->body);
	resp->status = 0;
	resp->curl_code = 0;
	resp->request_sent = 0;
	resp->error[0] = '\0';
}

char *
http_response_header(const struct http_response *resp, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = resp->headers.buf, *end = p + resp->headers.len;

	while (p != NULL && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *lend = eol ? eol : end;

		if ((size_t)(lend - p) > nlen && p[nlen] == ':' &&
		    strncasecmp(p, name, nlen) == 0) {
			const char *v = p + nlen + 1;

			while (v < lend && (*v == ' ' || *v == '\t'))
				v++;
			while (lend > v && (lend[-1] == '\r' ||
			    lend[-1] == ' ' || lend[-1] == '\t'))
				lend--;
			return xstrndup(v, (size_t)(lend - v));
		}
		p = eol ? eol + 1 : NULL;
	}
	return NULL;
}

static size_t
http_header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_xfer *x = arg;
	size_t len = size * n;

	/* A new status line (after 100 Continue): keep only the last block. */
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
		strbuf_reset(&x->resp->headers);
	strbuf_add(&x->resp->headers, data, len);
	return len;
}

static size_t
http_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_xfer *x = arg;
	size_t len = size * n, room;

	room = x->max_body > x->resp->body.len ?
	    x->max_body - x->resp->body.len : 0;
	strbuf_add(&x->resp->body, data, len < room ? len : room);
	return len;
}

static size_t
http_read_cb(char *buf, size_t size, size_t n, void *arg)
{
	struct http_xfer *x = arg;
	const struct http_request *req = x->req;
	size_t want = size * n;
	ssize_t got;

	if (x->pos >= x->total)
		return 0;
	if ((off_t)want > x->total - x->pos)
		want = (size_t)(x->total - x->pos);
	if (req->body != NULL) {
		memcpy(buf, (const char *)req->body + x->pos, want);
		got = (ssize_t)want;
	} else {
		do {
			got = pread(req->body_fd, buf, want,
			    req->body_off + x->pos);
		} while (got == -1 && errno == EINTR);
		/* A file that shrank under us: abort, never send short. */
		if (got <= 0)
			return CURL_READFUNC_ABORT;
	}
	x->pos += got;
	return (size_t)got;
}

static int
http_seek_cb(void *arg, curl_off_t offset, int origin)
{
	struct http_xfer *x = arg;

	if (origin != SEEK_SET || offset < 0 || offset > x->total)
		return CURL_SEEKFUNC_CANTSEEK;
	x->pos = offset;
	return CURL_SEEKFUNC_OK;
}

static void
http_xfer_free(struct http_xfer *x)
{
	if (x == NULL)
		return;
	if (x->easy != NULL)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->hdrs);
	free(x);
}

static int
http_xfer_method(struct http_xfer *x)
{
	const struct http_request *req = x->req;
	CURL *e = x->easy;
	int has_body = req->body != NULL || req->body_fd >= 0;

	if (strcmp(req->method, "GET") == 0)
		return 0;
	if (strcmp(req->method, "HEAD") == 0)
		return curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (strcmp(req->method, "PUT") == 0) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		return curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)x->total);
	}
	if (strcmp(req->method, "POST") == 0) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		return curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)x->total);
	}
	if (has_body) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
		    (curl_off_t)x->total);
	}
	return curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
}

static int
http_xfer_setup(struct http_xfer *x, struct errbuf *eb)
{
	const struct http_request *req = x->req;
	CURL *e;
	size_t i;

	if ((e = x->easy = curl_easy_init()) == NULL) {
		errbuf_set(eb, ERR_INTERNAL, "libcurl: cannot make a handle");
		return -1;
	}
	for (i = 0; i < req->nheaders; i++)
		x->hdrs = curl_slist_append(x->hdrs, req->headers[i]);
	/* curl adds these on its own; requests carry what they signed. */
	x->hdrs = curl_slist_append(x->hdrs, "Accept:");
	if (req->body_len == 0 && req->body_size == 0 &&
	    strcmp(req->method, "POST") == 0)
		x->hdrs = curl_slist_append(x->hdrs, "Content-Type:");
	x->total = req->body != NULL ? (off_t)req->body_len :
	    req->body_fd >= 0 ? req->body_size : 0;
	x->max_body = req->max_body ? req->max_body : HTTP_DEFAULT_MAX_BODY;
	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, http_read_cb);
	curl_easy_setopt(e, CURLOPT_READDATA, x);
	curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, http_seek_cb);
	curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 256L * 1024);
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
	if (req->timeout_ms > 0)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	if (req->connect_timeout_ms > 0)
		curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
		    req->connect_timeout_ms);
	if (req->low_speed_secs > 0) {
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
		curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, req->low_speed_secs);
	}
	if (req->ca_bundle != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_bundle);
	if (http_xfer_method(x) != CURLE_OK) {
		errbuf_set(eb, ERR_INTERNAL, "libcurl: cannot set method '%s'",
		    req->method);
		return -1;
	}
	return 0;
}

struct http_pool *
http_pool_new(int max_conns, struct errbuf *eb)
{
	struct http_pool *pool = xcalloc(1, sizeof(*pool));

	if ((pool->multi = curl_multi_init()) == NULL) {
		errbuf_set(eb, ERR_INTERNAL, "libcurl: cannot make a multi handle");
		free(pool);
		return NULL;
	}
	if (max_conns < 1)
		max_conns = 1;
	curl_multi_setopt(pool->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
	    (long)max_conns);
	curl_multi_setopt(pool->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    (long)max_conns);
	curl_multi_setopt(pool->multi, CURLMOPT_MAXCONNECTS, (long)max_conns);
	return pool;
}

void
http_pool_free(struct http_pool *pool)
{
	struct http_xfer *x;

	if (pool == NULL)
		return;
	/* Transfers still queued are dropped without their callbacks. */
	while ((x = pool->live) != NULL) {
		pool->live = x->next;
		curl_multi_remove_handle(pool->multi, x->easy);
		http_xfer_free(x);
	}
	curl_multi_cleanup(pool->multi);
	free(pool);
}

int
http_pool_add(struct http_pool *pool, const struct http_request *req,
    struct http_response *resp, http_done_fn done, void *arg,
    struct errbuf *eb)
{
	struct http_xfer *x = xcalloc(1, sizeof(*x));
	CURLMcode mc;

	x->req = req;
	x->resp = resp;
	x->done = done;
	x->arg = arg;
	http_response_reset(resp);
	if (http_xfer_setup(x, eb) == -1) {
		http_xfer_free(x);
		return -1;
	}
	if ((mc = curl_multi_add_handle(pool->multi, x->easy)) != CURLM_OK) {
		errbuf_set(eb, ERR_INTERNAL, "libcurl: %s",
		    curl_multi_strerror(mc));
		http_xfer_free(x);
		return -1;
	}
	x->next = pool->live;
	if (pool->live != NULL)
		pool->live->prev = x;
	pool->live = x;
	pool->pending++;
	return 0;
}

int
http_pool_pending(const struct http_pool *pool)
{
	return pool->pending;
}

static void
http_xfer_finish(struct http_pool *pool, CURL *easy, CURLcode code)
{
	struct http_xfer *x = NULL;
	curl_off_t reqsize = 0;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &x->resp->status);
	curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &reqsize);
	x->resp->curl_code = (int)code;
	x->resp->request_sent = reqsize > 0 && x->pos >= x->total;
	if (code != CURLE_OK)
		snprintf(x->resp->error, sizeof(x->resp->error), "%s",
		    x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
	curl_multi_remove_handle(pool->multi, easy);
	if (x->prev != NULL)
		x->prev->next = x->next;
	else
		pool->live = x->next;
	if (x->next != NULL)
		x->next->prev = x->prev;
	pool->pending--;
	x->done(x->arg, x->req, x->resp);
	http_xfer_free(x);
}

int
http_pool_run(struct http_pool *pool, long timeout_ms, struct errbuf *eb)
{
	int running, left, ndone = 0;
	CURLMsg *msg;
	CURLMcode mc;

	if ((mc = curl_multi_perform(pool->multi, &running)) != CURLM_OK)
		goto fail;
	while ((msg = curl_multi_info_read(pool->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		http_xfer_finish(pool, msg->easy_handle, msg->data.result);
		ndone++;
	}
	if (ndone > 0 || pool->pending == 0)
		return ndone;
	if ((mc = curl_multi_poll(pool->multi, NULL, 0, (int)timeout_ms,
	    NULL)) != CURLM_OK)
		goto fail;
	return 0;
 fail:
	errbuf_set(eb, ERR_INTERNAL, "libcurl: %s", curl_multi_strerror(mc));
	return -1;
}

static void
http_do_done(void *arg, const struct http_request *req,
    struct http_response *resp)
{
	(void)req;
	(void)resp;
	*(int *)arg = 1;
}

int
http_pool_do(struct http_pool *pool, const struct http_request *req,
    struct http_response *resp, struct errbuf *eb)
{
	int done = 0;

	if (http_pool_add(pool, req, resp, http_do_done, &done, eb) == -1)
		return -1;
	while (!done) {
		if (http_pool_run(pool, 1000, eb) == -1)
			return -1;
	}
	if (resp->curl_code != CURLE_OK) {
		http_response_error(resp, eb, req->method);
		return -1;
	}
	return 0;
}

void
http_response_error(const struct http_response *resp, struct errbuf *eb,
    const char *what)
{
	if (resp->curl_code != CURLE_OK)
		errbuf_set(eb, ERR_REMOTE, "%s: %s", what, resp->error);
	else
		errbuf_set(eb, ERR_REMOTE, "%s: HTTP %ld", what, resp->status);
	eb->http_status = resp->status;
}
