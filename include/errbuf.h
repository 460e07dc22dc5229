/*
 * errbuf: an error kind and a one-line message, filled by the library and
 * turned into a log line and an exit status by main() alone.
 */
#ifndef S3B_ERRBUF_H
#define S3B_ERRBUF_H

#include <stddef.h>

enum err_kind {
	ERR_NONE = 0,
	ERR_CONFIG,	/* bad or missing setting: exit 78 */
	ERR_USAGE,	/* bad command line: exit 64 */
	ERR_IO,		/* local I/O failure: exit 74 */
	ERR_NOSPACE,	/* spool file system full: exit 74 */
	ERR_LOCKED,	/* another run holds the lock: exit 75 */
	ERR_REMOTE,	/* S3, ElasticSearch or network failure: exit 1 */
	ERR_AUTH,	/* credentials could not be had or were refused: exit 1 */
	ERR_INTERNAL,	/* a bug or an impossible state: exit 70 */
};

struct errbuf {
	enum err_kind	kind;
	int		sys_errno;	/* errno for errbuf_setsys, else 0 */
	long		http_status;	/* HTTP status when one was seen, else 0 */
	char		msg[768];
};

/* Empty the buffer. */
void	errbuf_clear(struct errbuf *eb);

/* Set kind and a formatted message; a NULL eb is allowed and ignored. */
void	errbuf_set(struct errbuf *eb, enum err_kind kind, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* As errbuf_set, then append ": strerror(errno)" (errno read on entry). */
void	errbuf_setsys(struct errbuf *eb, enum err_kind kind, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* Put "prefix: " before the message already there (context from callers). */
void	errbuf_prefix(struct errbuf *eb, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* The sysexits(3) status that main() returns for this error kind. */
int	errbuf_exit_status(const struct errbuf *eb);

#endif
