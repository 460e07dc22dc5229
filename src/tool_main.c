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
	    "usage: %s [-qv] [--dry-run | --status]\n"
	    "       %s --help | --version\n"
	    "Moves the files under the bucket folders to S3; see %s(1).\n",
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
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog,
		    argv[optind]);
		usage(stderr, prog);
		return -1;
	}
	return 0;
}

static void
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void
summary(const struct run *r)
{
	const struct run_stats *s = &r->stats;

	log_notice("%llu files, %llu bytes, %llu objects, %llu failed, "
	    "%llu skipped, %llu left, %lld s",
	    (unsigned long long)s->files, (unsigned long long)s->bytes,
	    (unsigned long long)s->objects, (unsigned long long)s->failed,
	    (unsigned long long)s->skipped, (unsigned long long)s->left,
	    (long long)(time(NULL) - r->started));
}

static int
fail(const struct errbuf *eb)
{
	log_error("%s", eb->msg);
	return errbuf_exit_status(eb);
}

int
tool_main(enum tool_kind kind, int argc, char **argv,
    int (*run_fn)(struct run *r, struct errbuf *eb))
{
	const char *prog = kind == TOOL_BATCH ? "s3-batch" : "s3-sync";
	struct tool_opts o;
	struct config cfg;
	struct errbuf eb;
	struct run r;
	int status;

	/* no core dump can carry a secret */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	errbuf_clear(&eb);
	if (parse_opts(argc, argv, prog, &o) == -1)
		return EX_USAGE;
	tool_log_init(prog, o.verbosity);
	if (config_load(&cfg, kind, env_get, !o.dry_run && !o.status, &eb) == -1)
		return fail(&eb);
	/* no AWS_REGION: the profile's region, as the AWS SDKs do */
	if (cfg.region == NULL &&
	    creds_profile_region(env_get, &cfg.region, &eb) == -1) {
		config_release(&cfg);
		return fail(&eb);
	}
	tool_log_syslog(&cfg);
	install_signals();
	if (http_global_init(&eb) == -1) {
		config_release(&cfg);
		return fail(&eb);
	}
	if (run_open(&r, &cfg, &stop_requested, &eb) == -1 ||
	    run_fn(&r, &eb) == -1) {
		status = fail(&eb);
		goto out;
	}
	summary(&r);
	status = run_exit_status(&r);
	if (status == 0 && spool_mark_success(r.spool, time(NULL), &eb) == -1)
		status = fail(&eb);
 out:
	run_close(&r);
	http_global_cleanup();
	config_release(&cfg);
	tool_log_close();
	return status;
}
