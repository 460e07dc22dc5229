/*
 * s3: an S3 client over the http pool. Uploads are started, then driven by
 * s3_client_run() with many in flight at once; each ends in its done
 * callback. Every request is signed with SigV4 (the real payload hash in
 * x-amz-content-sha256, Content-MD5 and x-amz-checksum-sha256), retried
 * with backoff and jitter within a run-wide budget, and its answer checked.
 * Files above the multipart threshold go up in parts; a failed multipart
 * upload is aborted.
 */
#ifndef S3B_S3_H
#define S3B_S3_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "errbuf.h"

struct s3_client;
struct creds_provider;
struct http_pool;
struct s3_op;

struct s3_put {
	/* Set by the caller; kept alive by it until done() has run. */
	const char	*bucket;
	const char	*key;		/* raw key bytes (UTF-8), no leading '/' */
	int		 fd;		/* body from this file, or -1 */
	off_t		 size;		/* bytes of fd to send, from offset 0 */
	const void	*data;		/* or body from memory */
	size_t		 len;
	const char	*content_type;	/* NULL: none sent */
	/* Multipart started: record upload_id to abort it after a crash. */
	void		(*on_upload_id)(struct s3_put *put, const char *upload_id);
	void		(*done)(struct s3_put *put);
	void		*arg;

	/* Set by the client when done() runs. */
	int		 failed;
	struct errbuf	 eb;
	char		 etag[80];	/* as S3 answered, quotes removed */
	unsigned char	 sha256[32];	/* of the whole body as sent */
	int		 parts;		/* 0 for a single PUT */
	int		 upload_left;	/* a multipart upload may still be
					   open: its abort failed */

	struct s3_op	*op;		/* private */
};

/*
 * A client for the configuration's endpoint and settings, signing with
 * credentials from cp and sending through pool. NULL on failure.
 */
struct s3_client *s3_client_new(const struct config *cfg,
	    struct creds_provider *cp, struct http_pool *pool,
	    struct errbuf *eb);
void	s3_client_free(struct s3_client *c);

/* Start an upload; -1 (eb) when it could not start (done() is not called). */
int	s3_put_start(struct s3_client *c, struct s3_put *put, struct errbuf *eb);

/*
 * 1 once so many answers in a row were transport failures or 5xx that the
 * endpoint counts as down: failed requests are no longer retried, and a
 * run should start nothing new. Any good answer ends it.
 */
int	s3_client_unreachable(const struct s3_client *c);

/* Uploads started and not yet done. */
int	s3_client_busy(const struct s3_client *c);

/*
 * Drive transfers and retries for at most timeout_ms; done() callbacks run
 * from here. Returns the number of uploads that ended, -1 on an internal
 * failure (eb).
 */
int	s3_client_run(struct s3_client *c, long timeout_ms, struct errbuf *eb);

/* Blocking: upload and wait for the end. 0, or -1 with eb. */
int	s3_put_wait(struct s3_client *c, struct s3_put *put, struct errbuf *eb);

/*
 * Blocking HEAD: 1 when the object exists (size and etag set when not
 * NULL; etag without quotes, etagsz bytes), 0 when it does not, -1 on
 * failure (eb).
 */
int	s3_head(struct s3_client *c, const char *bucket, const char *key,
	    uint64_t *size, char *etag, size_t etagsz, struct errbuf *eb);

/*
 * Blocking: 1 when S3 holds exactly this file's bytes under the key (same
 * size, and the ETag this client's upload of it would get), 0 when it
 * does not, -1 on failure (eb). Recovery uses it before uploading again.
 */
int	s3_object_matches(struct s3_client *c, const char *bucket,
	    const char *key, int fd, off_t size, struct errbuf *eb);

/* Blocking abort of a multipart upload; a missing upload counts as done. */
int	s3_abort_multipart(struct s3_client *c, const char *bucket,
	    const char *key, const char *upload_id, struct errbuf *eb);

/*
 * The URL of an object as the client addresses it (virtual-hosted or path
 * style, key encoded), in a new string the caller frees.
 */
char	*s3_object_url(struct s3_client *c, const char *bucket,
	    const char *key);

#endif
