/*
 * tool: what the two binaries share and the library must not do: parse
 * the command line, print, install the log sink, turn errors into exit
 * statuses.
 */
#ifndef S3B_TOOL_H
#define S3B_TOOL_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "config.h"
#include "log.h"

struct run;
struct run_stats;

/*
 * The log sink. stderr: on a terminal notices and above (the summary) and
 * a progress line, else warnings and errors only; verbosity (+1 per -v,
 * -1 per -q) moves that threshold. tool_log_syslog() adds a remote rsyslog
 * (RFC 5424; UDP, or TCP with octet counting) when cfg names one: it gets
 * notices and above, info and debug with -v and -vv, whatever stderr shows.
 * A syslog that is down never fails or holds up a run: one warning on
 * stderr, then stderr only.
 */
void	tool_log_init(const char *progname, int verbosity);
void	tool_log_syslog(const struct config *cfg);
void	tool_log_close(void);

/*
 * Never print s (an AWS secret key, a session token, a password): any log
 * line that holds it has it replaced by "[redacted]" before it goes
 * anywhere. A last line of defence; the library does not log secrets. NULL
 * and strings shorter than 4 bytes are ignored. Copies are wiped at
 * tool_log_close().
 */
void	tool_log_secret(const char *s);

/*
 * Progress on a terminal (files, bytes, rate), redrawn at most four times
 * a second on one line of stderr and cleared before any other line.
 * tool_progress_watch() names the counters to show; from then on every
 * event the library reports (shown or not) may redraw the line, and
 * tool_progress() redraws it if due (a hook the run may call directly).
 * tool_progress_end() clears the line. No-ops when stderr is not a
 * terminal or -q was given.
 */
void	tool_progress_watch(const struct run_stats *s, time_t started);
void	tool_progress(const struct run_stats *s);
void	tool_progress_end(void);

/* "1.5 MiB", "512 B" into buf; returns buf. */
const char *tool_fmt_bytes(char *buf, size_t len, uint64_t n);
/* "3 d 4 h", "5 min 2 s", "12 s" into buf; returns buf. */
const char *tool_fmt_age(char *buf, size_t len, long long seconds);

/*
 * --dry-run: walk, look for open files, filter, and print to out what a
 * run would take ("bucket/key size", and for s3-batch the archive each
 * file would go into). Creates nothing, takes no lock, connects to
 * nothing. Returns the exit status (0, or the sysexits status of an error
 * it logged).
 */
int	tool_dry_run(const struct config *cfg, FILE *out);

/*
 * --status: what waits in the spools of both tools (sealed batches, their
 * bytes, manifests, multipart uploads, unsealed staging directories, the
 * oldest one's age), whether a run holds the lock, and when the last run
 * that left nothing behind ended. Reads only: no lock, no server. Returns
 * the exit status (0, or 74 when a spool cannot be read).
 */
int	tool_status(const struct config *cfg, FILE *out);

/* Run one tool: options, configuration, lock, the run, the summary. */
int	tool_main(enum tool_kind kind, int argc, char **argv,
	    int (*run_fn)(struct run *r, struct errbuf *eb));

#endif
