#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sysexits.h>
#include <time.h>

#include "creds.h"
#include "http.h"
#include "run.h"
#include "spool.h"
#include "tool.h"

static volatile sig_atomic_t stop_requested;

static const char *
env_get(const char *name)
{
	return getenv(name);
}

static void
on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void
usage(FILE *f, const char *prog)
{
	fprintf(f,
	    "usage: %s [-qv] [-n | --dry-run | --status]\n"
	    "       %s --help | --version\n"
	    "Moves the files under the bucket folders to S3; see %s(1).\n"
	    "  -v, --verbose  more on stderr (-vv: a line per file)\n"
	    "  -q, --quiet    less on stderr (-q: errors only)\n"
	    "  -n, --dry-run  list what a run would take; change nothing\n"
	    "      --status   show what waits in the spool\n",
	    prog, prog, prog);
}

struct tool_opts {
	int	verbosity;
	int	dry_run;
	int	status;
};

static int
parse_opts(int argc, char **argv, const char *prog, struct tool_opts *o)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "status", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, "hVvqn", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout, prog);
			exit(EX_OK);
		case 'V':
			printf("%s %s\n", prog, S3B_VERSION);
			exit(EX_OK);
		case 'v':
			o->verbosity++;
			break;
		case 'q':
			o->verbosity--;
			break;
		case 'n':
			o->dry_run = 1;
			break;
		case 's':
			o->status = 1;
			break;
		default:
			usage(stderr, prog);
			return -1;
		}
	}
	if (o->dry_run && o->status) {
		fprintf(stderr, "%s: --dry-run and --status exclude each "
		    "other\n", prog);
		usage(stderr, prog);
		return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog,
		    argv[optind]);
		usage(stderr, prog);
		return -1;
	}
	return 0;
}

/*
 * The first SIGTERM or SIGINT asks the run to stop at its next safe point;
 * a second one (SA_RESETHAND) kills it at once, which the spool survives
 * as it survives SIGKILL.
 */
static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Whatever a log line might carry by mistake is redacted (tool_log.c). */
static void
register_secrets(const struct config *cfg)
{
	tool_log_secret(getenv("AWS_SECRET_ACCESS_KEY"));
	tool_log_secret(getenv("AWS_SESSION_TOKEN"));
	tool_log_secret(getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
	tool_log_secret(cfg->es_password);
	tool_log_secret(cfg->es_api_key);
}

static void
summary(const struct run *r, int status)
{
	const struct run_stats *s = &r->stats;

	log_notice("%llu files, %llu bytes, %llu %s, %llu failed, "
	    "%llu skipped, %llu left, %lld s, exit %d",
	    (unsigned long long)s->files, (unsigned long long)s->bytes,
	    (unsigned long long)s->objects,
	    r->cfg->tool == TOOL_BATCH ? "archives" : "objects",
	    (unsigned long long)s->failed,
	    (unsigned long long)s->skipped, (unsigned long long)s->left,
	    (long long)(time(NULL) - r->started), status);
}

static int
fail(const struct errbuf *eb)
{
	/* an overlapping cron run is routine: no mail for it */
	if (eb->kind == ERR_LOCKED)
		log_notice("%s; exiting", eb->msg);
	else
		log_error("%s", eb->msg);
	return errbuf_exit_status(eb);
}

/* One real run: lock, recover, take, deliver; returns the exit status. */
static int
tool_run(const struct config *cfg,
    int (*run_fn)(struct run *r, struct errbuf *eb))
{
	struct errbuf eb;
	struct run r;
	int status;

	errbuf_clear(&eb);
	if (http_global_init(&eb) == -1)
		return fail(&eb);
	if (run_open(&r, cfg, &stop_requested, &eb) == -1) {
		status = fail(&eb);
		goto out;
	}
	tool_progress_watch(&r.stats, r.started);
	if (run_fn(&r, &eb) == -1)
		status = fail(&eb);
	else
		status = run_exit_status(&r);
	tool_progress_end();
	if (stop_requested)
		log_warn("stopped by a signal; the rest is left for the next "
		    "run");
	if (status == 0 && spool_mark_success(r.spool, time(NULL), &eb) == -1)
		status = fail(&eb);
	summary(&r, status);
 out:
	run_close(&r);
	http_global_cleanup();
	return status;
}

int
tool_main(enum tool_kind kind, int argc, char **argv,
    int (*run_fn)(struct run *r, struct errbuf *eb))
{
	const char *prog = kind == TOOL_BATCH ? "s3-batch" : "s3-sync";
	struct tool_opts o;
	struct config cfg;
	struct errbuf eb;
	int status;

	/* no core dump can carry a secret */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	errbuf_clear(&eb);
	if (parse_opts(argc, argv, prog, &o) == -1)
		return EX_USAGE;
	tool_log_init(prog, o.verbosity);
	install_signals();
	/* --dry-run and --status need no server settings */
	if (config_load(&cfg, kind, env_get, !o.dry_run && !o.status,
	    &eb) == -1) {
		status = fail(&eb);
		goto out;
	}
	register_secrets(&cfg);
	if (o.status)
		status = tool_status(&cfg, stdout);
	else if (o.dry_run)
		status = tool_dry_run(&cfg, stdout);
	/* no AWS_REGION: the profile's region, as the AWS SDKs do */
	else if (cfg.region == NULL &&
	    creds_profile_region(env_get, &cfg.region, &eb) == -1)
		status = fail(&eb);
	else {
		tool_log_syslog(&cfg);
		status = tool_run(&cfg, run_fn);
	}
	config_release(&cfg);
 out:
	tool_log_close();
	return status;
}
