#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

static log_handler_fn	handler;
static void		*handler_arg;
static enum log_level	max_level = LOG_LVL_DEBUG;
static pthread_mutex_t	log_mtx = PTHREAD_MUTEX_INITIALIZER;

void
log_set_handler(log_handler_fn fn, void *arg)
{
	handler = fn;
	handler_arg = arg;
}

void
log_set_max_level(enum log_level level)
{
	max_level = level;
}

int
log_enabled(enum log_level level)
{
	return handler != NULL && level <= max_level;
}

static void
log_vemit(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];

	if (!log_enabled(level))
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	pthread_mutex_lock(&log_mtx);
	handler(level, line, handler_arg);
	pthread_mutex_unlock(&log_mtx);
}

#define LOG_FN(name, level)				\
void							\
name(const char *fmt, ...)				\
{							\
	va_list ap;					\
							\
	va_start(ap, fmt);				\
	log_vemit(level, fmt, ap);			\
	va_end(ap);					\
}

LOG_FN(log_error, LOG_LVL_ERROR)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_notice, LOG_LVL_NOTICE)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)
