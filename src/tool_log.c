/*
 * tool_log: where the library's events go. On a terminal, notices
 * (progress, the summary) and above; under cron only warnings and errors,
 * so that cron mails only when something is wrong. -v and -q move that.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static const char	*prog = "s3-batch";
static enum log_level	 stderr_max = LOG_LVL_WARN;

static void
tool_log_handler(enum log_level level, const char *line, void *arg)
{
	static const char *const tags[] = {
		"error: ", "warning: ", "", "", "debug: ",
	};

	(void)arg;
	if (level <= stderr_max)
		fprintf(stderr, "%s: %s%s\n", prog, tags[level], line);
}

void
tool_log_init(const char *progname, int verbosity)
{
	int level = isatty(STDERR_FILENO) ? LOG_LVL_NOTICE : LOG_LVL_WARN;

	prog = progname;
	level += verbosity;
	if (level < LOG_LVL_ERROR)
		level = LOG_LVL_ERROR;
	if (level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	stderr_max = (enum log_level)level;
	log_set_handler(tool_log_handler, NULL);
	log_set_max_level(stderr_max);
}

void
tool_log_syslog(const struct config *cfg)
{
	(void)cfg;
}

void
tool_log_close(void)
{
	fflush(stderr);
}
