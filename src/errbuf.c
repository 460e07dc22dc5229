#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "errbuf.h"

void
errbuf_clear(struct errbuf *eb)
{
	if (eb == NULL)
		return;
	eb->kind = ERR_NONE;
	eb->sys_errno = 0;
	eb->http_status = 0;
	eb->msg[0] = '\0';
}

static void
errbuf_vset(struct errbuf *eb, enum err_kind kind, const char *fmt, va_list ap)
{
	eb->kind = kind;
	eb->sys_errno = 0;
	eb->http_status = 0;
	vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
}

void
errbuf_set(struct errbuf *eb, enum err_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (eb == NULL)
		return;
	va_start(ap, fmt);
	errbuf_vset(eb, kind, fmt, ap);
	va_end(ap);
}

void
errbuf_setsys(struct errbuf *eb, enum err_kind kind, const char *fmt, ...)
{
	int saved = errno;
	size_t len;
	va_list ap;

	if (eb == NULL)
		return;
	va_start(ap, fmt);
	errbuf_vset(eb, kind, fmt, ap);
	va_end(ap);
	eb->sys_errno = saved;
	if (saved == ENOSPC || saved == EDQUOT)
		eb->kind = ERR_NOSPACE;
	len = strlen(eb->msg);
	snprintf(eb->msg + len, sizeof(eb->msg) - len, ": %s", strerror(saved));
}

void
errbuf_prefix(struct errbuf *eb, const char *fmt, ...)
{
	char tail[sizeof(eb->msg)];
	size_t len;
	va_list ap;

	if (eb == NULL)
		return;
	memcpy(tail, eb->msg, sizeof(tail));
	va_start(ap, fmt);
	vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
	va_end(ap);
	len = strlen(eb->msg);
	if (len + 2 < sizeof(eb->msg)) {
		memcpy(eb->msg + len, ": ", 2);
		len += 2;
		memcpy(eb->msg + len, tail, sizeof(eb->msg) - len - 1);
		eb->msg[sizeof(eb->msg) - 1] = '\0';
	}
}

int
errbuf_exit_status(const struct errbuf *eb)
{
	switch (eb->kind) {
	case ERR_NONE:
		return EX_OK;
	case ERR_CONFIG:
		return EX_CONFIG;
	case ERR_USAGE:
		return EX_USAGE;
	case ERR_IO:
	case ERR_NOSPACE:
		return EX_IOERR;
	case ERR_LOCKED:
		return EX_TEMPFAIL;
	case ERR_REMOTE:
	case ERR_AUTH:
		return 1;
	case ERR_INTERNAL:
	default:
		return EX_SOFTWARE;
	}
}
