#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "creds.h"
#include "es.h"
#include "manifest.h"
#include "filter.h"
#include "http.h"
#include "log.h"
#include "openfiles.h"
#include "run.h"
#include "s3.h"
#include "spool.h"

static const char *
run_getenv(const char *name)
{
	return getenv(name);
}

int
run_open(struct run *r, const struct config *cfg,
    volatile sig_atomic_t *stop, struct errbuf *eb)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->stop = stop;
	r->started = time(NULL);
	errbuf_clear(&r->first_error);
	if ((r->spool = spool_open(cfg->spool_dir, eb)) == NULL)
		return -1;
	if ((r->pool = http_pool_new(cfg->concurrency, eb)) == NULL)
		return -1;
	if ((r->cp = creds_provider_new(run_getenv, r->pool, eb)) == NULL)
		return -1;
	if ((r->s3 = s3_client_new(cfg, r->cp, r->pool, eb)) == NULL)
		return -1;
	if ((r->es = es_client_new(cfg, r->pool, eb)) == NULL)
		return -1;
	manifest_uuid(r->run_id);
	if (gethostname(r->host, sizeof(r->host) - 1) == -1)
		snprintf(r->host, sizeof(r->host), "localhost");
	return 0;
}

void
run_close(struct run *r)
{
	walk_free(r->walk);
	r->walk = NULL;
	es_client_free(r->es);
	r->es = NULL;
	s3_client_free(r->s3);
	creds_provider_free(r->cp);
	http_pool_free(r->pool);
	spool_close(r->spool);
	r->s3 = NULL;
	r->cp = NULL;
	r->pool = NULL;
	r->spool = NULL;
}

/* Past this many error lines a run says how many more it did not show. */
#define RUN_ERRORS_SHOWN	20

void
run_fail(struct run *r, const struct errbuf *eb)
{
	r->stats.failed++;
	if (r->first_error.kind == ERR_NONE)
		r->first_error = *eb;
	if (r->stats.failed <= RUN_ERRORS_SHOWN)
		log_error("%s", eb->msg);
	else
		log_info("%s", eb->msg);
	if (r->stats.failed == RUN_ERRORS_SHOWN + 1)
		log_error("more failures follow; the summary counts them "
		    "(-vv shows each)");
	if (eb->kind == ERR_AUTH && !r->auth_failed) {
		r->auth_failed = 1;
		log_error("S3 refused the credentials: no new uploads this run");
	}
}

int
run_exit_status(const struct run *r)
{
	if (r->first_error.kind != ERR_NONE)
		return errbuf_exit_status(&r->first_error);
	if (r->stats.left > 0 || (r->stop != NULL && *r->stop))
		return 1;
	return 0;
}

int
run_should_stop(struct run *r, uint64_t bytes_taken)
{
	const struct config *cfg = r->cfg;

	if (r->stop != NULL && *r->stop)
		return 1;
	if (r->auth_failed)
		return 1;
	if (s3_client_unreachable(r->s3)) {
		if (!r->s3_down) {
			r->s3_down = 1;
			log_error("S3 does not answer (%s); no new uploads this "
			    "run", r->first_error.msg[0] ? r->first_error.msg :
			    "too many failures in a row");
		}
		return 1;
	}
	if (cfg->max_run_seconds > 0 &&
	    time(NULL) - r->started >= cfg->max_run_seconds)
		return 1;
	if (cfg->max_run_bytes > 0 && bytes_taken >= cfg->max_run_bytes)
		return 1;
	return 0;
}

struct recover_ctx {
	struct run	*r;
	int		 left;
};

static int
recover_one(void *arg, const char *id, const char *bucket, const char *key,
    const char *upload_id)
{
	struct recover_ctx *rc = arg;
	struct errbuf eb;

	errbuf_clear(&eb);
	if (s3_abort_multipart(rc->r->s3, bucket, key, upload_id, &eb) == -1) {
		log_warn("recovery: %s", eb.msg);
		rc->left++;
		return 0;
	}
	log_info("recovery: aborted the unfinished multipart upload of "
	    "'s3://%s/%s'", bucket, key);
	if (spool_mpu_forget(rc->r->spool, id, &eb) == -1) {
		log_warn("%s", eb.msg);
		rc->left++;
	}
	return 0;
}

int
run_recover_multipart(struct run *r, struct errbuf *eb)
{
	struct recover_ctx rc = { r, 0 };

	if (spool_mpu_each(r->spool, recover_one, &rc, eb) == -1)
		return -1;
	if (rc.left > 0) {
		errbuf_set(eb, ERR_REMOTE, "recovery: %d unfinished multipart "
		    "upload%s could not be aborted", rc.left,
		    rc.left == 1 ? "" : "s");
		return -1;
	}
	return 0;
}

int
run_select(struct run *r, const struct walk_opts *wo, struct errbuf *eb)
{
	struct filter_opts fo;
	struct filter_stats fs;
	struct openfiles *of = NULL;
	int rc = -1;

	if ((r->walk = walk_open(r->cfg->root, wo, eb)) == NULL)
		goto out;
	if (walk_run(r->walk, &r->files, eb) == -1)
		goto out;
	if ((of = openfiles_scan(eb)) == NULL)
		goto out;
	memset(&fo, 0, sizeof(fo));
	fo.settle_seconds = r->cfg->settle_seconds;
	fo.ignore = r->cfg->ignore;
	fo.now = time(NULL);
	memset(&fs, 0, sizeof(fs));
	filter_apply(&r->files, &fo, of, &fs);
	r->stats.skipped += r->files.skipped + fs.ignored + fs.open + fs.young;
	rc = 0;
 out:
	openfiles_free(of);
	return rc;
}
