/*
 * tool: what the two binaries share and the library must not do: parse
 * the command line, print, install the log sink, turn errors into exit
 * statuses.
 */
#ifndef S3B_TOOL_H
#define S3B_TOOL_H

#include "config.h"
#include "log.h"

struct run;

/* The log sink: stderr (and, later, rsyslog). */
void	tool_log_init(const char *progname, int verbosity);
void	tool_log_syslog(const struct config *cfg);
void	tool_log_close(void);

/* Run one tool: options, configuration, lock, the run, the summary. */
int	tool_main(enum tool_kind kind, int argc, char **argv,
	    int (*run_fn)(struct run *r, struct errbuf *eb));

#endif
