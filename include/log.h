/*
 * log: how the library reports events. The library never prints; it calls
 * the handler that main() installs (stderr, rsyslog). Without a handler,
 * events are dropped.
 */
#ifndef S3B_LOG_H
#define S3B_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_NOTICE,		/* summary lines */
	LOG_LVL_INFO,		/* one line per file or object */
	LOG_LVL_DEBUG,		/* HTTP exchanges, retries */
};

typedef void (*log_handler_fn)(enum log_level level, const char *line,
    void *arg);

/* Install the handler (NULL to drop events). Not thread-safe: call first. */
void	log_set_handler(log_handler_fn fn, void *arg);

/* Cheap test used to skip building debug lines nobody will see. */
void	log_set_max_level(enum log_level level);
int	log_enabled(enum log_level level);

void	log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
