/*
 * run: what one run of either tool holds (spool lock, HTTP pool,
 * credentials, S3 client, counters, bounds) and the stages both tools
 * share: recovery of multipart uploads and the selection of files.
 */
#ifndef S3B_RUN_H
#define S3B_RUN_H

#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "errbuf.h"
#include "walk.h"

struct spool;
struct http_pool;
struct creds_provider;
struct s3_client;
struct es_client;
struct manifest;

struct run_stats {
	uint64_t	files;		/* originals delivered and removed */
	uint64_t	bytes;		/* their bytes */
	uint64_t	objects;	/* objects written to S3 */
	uint64_t	sent;		/* their bytes, as S3 confirmed them */
	uint64_t	failed;		/* files or objects left by a failure */
	uint64_t	skipped;	/* files passed over (open, young, ...) */
	uint64_t	left;		/* files left for the next run (bounds) */
};

struct run {
	const struct config	*cfg;
	struct spool		*spool;
	struct http_pool	*pool;
	struct creds_provider	*cp;
	struct s3_client	*s3;
	struct es_client	*es;
	int			 es_template;	/* 1 once the template is in */
	char			 run_id[37];
	char			 host[256];
	time_t			 started;
	volatile sig_atomic_t	*stop;		/* set by SIGTERM/SIGINT */
	struct run_stats	 stats;
	struct errbuf		 first_error;	/* what made the run leave work */
	int			 auth_failed;	/* stop starting new uploads */
	int			 s3_down;	/* said once: S3 does not answer */
	/* the selection */
	struct walk		*walk;
	struct walk_result	 files;
};

/*
 * Take the spool lock, then set up HTTP, credentials and S3. stop may be
 * NULL. 0, or -1 with eb (ERR_LOCKED, ERR_IO, ...); run_close() either way.
 */
int	run_open(struct run *r, const struct config *cfg,
	    volatile sig_atomic_t *stop, struct errbuf *eb);
void	run_close(struct run *r);

/* Abort the multipart uploads earlier runs recorded and did not finish. */
int	run_recover_multipart(struct run *r, struct errbuf *eb);

/*
 * The files this run takes: walk the root, drop open, young and ignored
 * files. raw_names as walk_opts. Fills r->walk and r->files. 0, or -1 (eb).
 */
int	run_select(struct run *r, const struct walk_opts *wo, struct errbuf *eb);

/*
 * Recovery, at the start of every run, in SPEC's order: delete unsealed
 * staging directories, abort recorded multipart uploads, then for each
 * sealed batch unlink the originals that are still the files it holds,
 * upload its archive if S3 does not have it, deliver its manifest, clear
 * it. Failures are counted (run_fail) and leave the batch for later.
 * -1 (eb) only when the spool cannot be read.
 */
int	run_recover(struct run *r, struct errbuf *eb);

/*
 * Deliver the manifests of sealed batches: ElasticSearch, and for the
 * entries it did not take, one fallback object per batch. Each batch
 * whose entries are all delivered is cleared from the spool; the others
 * stay for a later run.
 */
void	run_deliver(struct run *r, struct manifest *ms, size_t n);

/* 1 when the run must not start new work: a signal, or a bound reached. */
int	run_should_stop(struct run *r, uint64_t bytes_taken);

/* Count a failure; the first one is kept for the exit status. */
void	run_fail(struct run *r, const struct errbuf *eb);

/* Exit status of the run as SPEC lists it (0, or 1 when work is left). */
int	run_exit_status(const struct run *r);

#endif
