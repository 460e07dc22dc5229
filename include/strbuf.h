/*
 * strbuf: a growable, always NUL-terminated byte buffer (after git's).
 * A zeroed struct or STRBUF_INIT is an empty buffer. Allocation failure
 * aborts: the tools cannot do anything useful without memory.
 */
#ifndef S3B_STRBUF_H
#define S3B_STRBUF_H

#include <stddef.h>

struct strbuf {
	char	*buf;	/* never NULL after strbuf_init or a first add */
	size_t	len;
	size_t	alloc;
};

/* Like git's: an empty buffer's buf is a shared "", never NULL. */
extern char strbuf_slopbuf[];
#define STRBUF_INIT { strbuf_slopbuf, 0, 0 }

void	strbuf_init(struct strbuf *sb, size_t hint);
/* Free the memory; the buffer is empty and reusable afterwards. */
void	strbuf_release(struct strbuf *sb);
/* Hand the string to the caller (who frees it); the buffer becomes empty. */
char	*strbuf_detach(struct strbuf *sb, size_t *len);
/* Wipe the bytes (secrets) and release. */
void	strbuf_wipe(struct strbuf *sb);

void	strbuf_grow(struct strbuf *sb, size_t extra);
void	strbuf_reset(struct strbuf *sb);
void	strbuf_add(struct strbuf *sb, const void *data, size_t len);
void	strbuf_adds(struct strbuf *sb, const char *s);
void	strbuf_addch(struct strbuf *sb, int c);
void	strbuf_addf(struct strbuf *sb, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Lower-case hex of len bytes into out (2 * len + 1 bytes, NUL-ended). */
void	hex_encode(const unsigned char *data, size_t len, char *out);
/* Lower-case hex of len bytes. */
void	strbuf_addhex(struct strbuf *sb, const unsigned char *data, size_t len);
/* Read a whole file (at most max bytes); -1 with errno set on failure. */
int	strbuf_read_file(struct strbuf *sb, const char *path, size_t max);

/* Allocation helpers that abort on failure. */
void	*xmalloc(size_t n);
void	*xcalloc(size_t n, size_t size);
void	*xrealloc(void *p, size_t n);
char	*xstrdup(const char *s);
char	*xstrndup(const char *s, size_t n);
char	*xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
