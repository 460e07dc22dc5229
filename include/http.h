/*
 * http: the one place that talks to libcurl. A pool holds a curl multi
 * handle, so many transfers can be in flight over reused connections; the
 * blocking http_pool_do() is a pool run with one transfer.
 *
 * A transfer is described by a struct http_request (owned by the caller,
 * which must keep it alive until the transfer is done) and answered in a
 * struct http_response (filled by the pool).
 */
#ifndef S3B_HTTP_H
#define S3B_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include "errbuf.h"
#include "strbuf.h"

struct http_pool;

struct http_request {
	const char	*method;	/* "GET", "PUT", "POST", "HEAD", "DELETE" */
	const char	*url;		/* already encoded */
	const char	**headers;	/* "Name: value" strings */
	size_t		 nheaders;
	/* Body: from memory (body != NULL), or from a file range (body_fd >= 0). */
	const void	*body;
	size_t		 body_len;
	int		 body_fd;	/* -1 for none; read with pread() */
	off_t		 body_off;
	off_t		 body_size;
	long		 timeout_ms;	/* whole transfer; 0 = none */
	long		 connect_timeout_ms;
	long		 low_speed_secs; /* abort when under 1 KiB/s this long; 0 = off */
	const char	*ca_bundle;	/* NULL = system store */
	size_t		 max_body;	/* largest response body kept (default 1 MiB) */
};

struct http_response {
	long		 status;	/* 0 when no answer was read */
	struct strbuf	 headers;	/* raw header block of the final answer */
	struct strbuf	 body;		/* at most max_body bytes */
	int		 curl_code;	/* CURLcode, 0 = transfer completed */
	int		 request_sent;	/* the whole request went out (for ambiguity) */
	char		 error[256];	/* libcurl's message when curl_code != 0 */
};

/* Set up libcurl once, before any thread starts. */
int	http_global_init(struct errbuf *eb);
void	http_global_cleanup(void);

void	http_request_init(struct http_request *req);
void	http_response_init(struct http_response *resp);
void	http_response_release(struct http_response *resp);

/*
 * The value of a response header (case-insensitive name), copied into a
 * new string the caller frees, or NULL when absent.
 */
char	*http_response_header(const struct http_response *resp,
	    const char *name);

/* A pool of at most max_conns parallel connections. NULL on failure. */
struct http_pool *http_pool_new(int max_conns, struct errbuf *eb);
void	http_pool_free(struct http_pool *pool);

typedef void (*http_done_fn)(void *arg, const struct http_request *req,
	    struct http_response *resp);

/*
 * Queue a transfer; done(arg, req, resp) is called from http_pool_run()
 * when it ends, successfully or not (see resp->curl_code and resp->status).
 * Returns -1 only when the transfer could not be set up.
 */
int	http_pool_add(struct http_pool *pool, const struct http_request *req,
	    struct http_response *resp, http_done_fn done, void *arg,
	    struct errbuf *eb);

/* Transfers queued or running. */
int	http_pool_pending(const struct http_pool *pool);

/*
 * Drive transfers until at least one completes (its callback has run) or
 * timeout_ms passes; returns the number completed, -1 on a multi error.
 * Callbacks may queue new transfers.
 */
int	http_pool_run(struct http_pool *pool, long timeout_ms,
	    struct errbuf *eb);

/*
 * Run one transfer to its end through the pool. Returns 0 when an answer
 * was read (any status), -1 on a transport failure (eb says which).
 */
int	http_pool_do(struct http_pool *pool, const struct http_request *req,
	    struct http_response *resp, struct errbuf *eb);

/* Describe a transport failure or a status in eb: "<what>: <reason>". */
void	http_response_error(const struct http_response *resp,
	    struct errbuf *eb, const char *what);

#endif
