/*
 * sync: the upload stage of s3-sync. Files are taken in walk order; at most
 * twice the concurrency are open at once, so descriptors and memory stay
 * flat whatever the number of files.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "log.h"
#include "manifest.h"
#include "names.h"
#include "run.h"
#include "s3.h"
#include "spool.h"
#include "strbuf.h"
#include "sync.h"
#include "walk.h"

struct sync_item {
	struct s3_put		 put;
	struct sync_ctx		*ctx;
	const struct walk_entry	*e;
	int			 fd;
	char			*mpu_id;	/* spool record while multipart */
	struct sync_item	*next_free;
};

/* Confirmed uploads are sealed into a manifest batch this often. */
#define SYNC_SEAL_EVERY	1000

struct sync_ctx {
	struct run		*r;
	struct sync_item	*items;
	struct sync_item	*free;
	size_t			 next;		/* next entry to start */
	int			 inflight;
	uint64_t		 taken;		/* bytes started */
	/* uploaded, not yet sealed: their originals are still in place */
	struct manifest		 pending;
	const struct walk_entry	**pend;
	/* sealed this run, to deliver at the end */
	struct manifest		*sealed;
	size_t			 nsealed;
	int			 workfd;
	char			*workname;
};

static void
sync_pending_reset(struct sync_ctx *ctx)
{
	manifest_init(&ctx->pending, "s3-sync", ctx->r->run_id, ctx->r->host,
	    time(NULL));
}

/*
 * Seal the pending entries in the spool, then unlink their originals: a
 * run killed in between leaves a batch whose recovery unlinks them.
 */
static void
sync_flush(struct sync_ctx *ctx)
{
	struct run *r = ctx->r;
	struct manifest *m = &ctx->pending;
	struct errbuf eb;
	size_t i;
	int bfd = -1, rc;

	errbuf_clear(&eb);
	if (m->n == 0)
		return;
	m->sealed_at = time(NULL);
	if (ctx->workfd == -1 && (ctx->workfd = batch_stage_open(r->spool,
	    &ctx->workname, &eb)) == -1)
		goto fail;
	if ((bfd = batch_stage_dir(ctx->workfd, m->id, &eb)) == -1 ||
	    batch_seal(r->spool, ctx->workfd, bfd, m, &eb) == -1)
		goto fail;
	close(bfd);
	for (i = 0; i < m->n; i++) {
		const struct walk_entry *e = ctx->pend[i];

		errbuf_clear(&eb);
		rc = walk_unlink_if_same(r->walk, e, &eb);
		if (rc == -1)
			run_fail(r, &eb);
		else if (rc == 1)
			log_warn("'%s/%s': replaced while it was uploaded; kept "
			    "for the next run", e->bucket, m->e[i].object_key);
		else {
			r->stats.files++;
			r->stats.bytes += m->e[i].size;
		}
	}
	ctx->sealed = xrealloc(ctx->sealed, (ctx->nsealed + 1) *
	    sizeof(*ctx->sealed));
	ctx->sealed[ctx->nsealed++] = *m;
	sync_pending_reset(ctx);
	return;
 fail:
	if (bfd != -1)
		close(bfd);
	/* the originals stay; their objects are simply sent again */
	run_fail(r, &eb);
	r->stats.left += m->n;
	manifest_release(m);
	sync_pending_reset(ctx);
	if (r->stop == NULL || !*r->stop)
		r->auth_failed = 1;	/* no spool: start nothing more */
}

static void
sync_on_upload_id(struct s3_put *put, const char *upload_id)
{
	struct sync_item *it = put->arg;
	struct errbuf eb;

	errbuf_clear(&eb);
	if (spool_mpu_record(it->ctx->r->spool, put->bucket, put->key,
	    upload_id, &it->mpu_id, &eb) == -1)
		log_warn("multipart upload of 's3://%s/%s' not recorded: %s",
		    put->bucket, put->key, eb.msg);
}

/* S3 has the object: remove the original if it is still what was sent. */
static void
sync_release(struct sync_item *it)
{
	struct sync_ctx *ctx = it->ctx;
	struct run *r = ctx->r;
	const struct walk_entry *e = it->e;
	struct strbuf name = STRBUF_INIT;
	struct manifest_entry *me;
	struct stat st;

	r->stats.objects++;
	r->stats.sent += (uint64_t)e->st.st_size;
	name_escape(&name, e->key, e->key_len);
	if (fstat(it->fd, &st) == -1 || !walk_identity_same(&e->st, &st)) {
		log_warn("'%s/%s': changed while it was uploaded; kept for the "
		    "next run", e->bucket, name.buf);
		r->stats.left++;
		goto out;
	}
	me = manifest_add(&ctx->pending, e->bucket, e->key, e->key_len,
	    e->key, e->key_len, &e->st);
	me->object_key = xstrndup(e->key, e->key_len);
	me->url = s3_object_url(r->s3, e->bucket, e->key);
	memcpy(me->sha256, it->put.sha256, 32);
	ctx->pend[ctx->pending.n - 1] = e;
	log_info("'%s/%s' -> s3://%s/%s (%lld bytes)", e->bucket, name.buf,
	    e->bucket, name.buf, (long long)e->st.st_size);
	if (ctx->pending.n >= SYNC_SEAL_EVERY)
		sync_flush(ctx);
 out:
	strbuf_release(&name);
}

static void
sync_done(struct s3_put *put)
{
	struct sync_item *it = put->arg;
	struct sync_ctx *ctx = it->ctx;
	struct errbuf eb;

	errbuf_clear(&eb);
	if (put->failed)
		run_fail(ctx->r, &put->eb);
	else
		sync_release(it);
	if (it->mpu_id != NULL) {
		/* a failed abort keeps the record for the next run */
		if (!put->upload_left &&
		    spool_mpu_forget(ctx->r->spool, it->mpu_id, &eb) == -1)
			log_warn("%s", eb.msg);
		free(it->mpu_id);
		it->mpu_id = NULL;
	}
	close(it->fd);
	it->fd = -1;
	it->next_free = ctx->free;
	ctx->free = it;
	ctx->inflight--;
}

/* Open and start the next file; 0 when one started or was passed over. */
static int
sync_start(struct sync_ctx *ctx, struct errbuf *eb)
{
	struct run *r = ctx->r;
	const struct walk_entry *e = &r->files.entries[ctx->next++];
	struct sync_item *it = ctx->free;
	struct strbuf name = STRBUF_INIT;
	struct stat st;
	struct errbuf oeb;
	int fd;

	errbuf_clear(&oeb);
	if ((fd = walk_openat(r->walk, e, &st, &oeb)) == -1) {
		name_escape(&name, e->key, e->key_len);
		log_warn("'%s/%s': %s; passed over", e->bucket, name.buf,
		    oeb.sys_errno == ENOENT ? "vanished" :
		    oeb.sys_errno == ESTALE ? "replaced" : oeb.msg);
		strbuf_release(&name);
		r->stats.skipped++;
		return 0;
	}
	ctx->free = it->next_free;
	memset(&it->put, 0, sizeof(it->put));
	it->e = e;
	it->fd = fd;
	it->put.bucket = e->bucket;
	it->put.key = e->key;
	it->put.fd = fd;
	it->put.size = st.st_size;
	it->put.on_upload_id = sync_on_upload_id;
	it->put.done = sync_done;
	it->put.arg = it;
	ctx->inflight++;
	ctx->taken += (uint64_t)st.st_size;
	if (s3_put_start(r->s3, &it->put, eb) == -1) {
		/* could not even read it: a local problem for this file */
		it->put.failed = 1;
		it->put.eb = *eb;
		errbuf_clear(eb);
		sync_done(&it->put);
	}
	return 0;
}

static int
sync_upload_all(struct sync_ctx *ctx, struct errbuf *eb)
{
	struct run *r = ctx->r;
	size_t n = r->files.n;

	while (ctx->next < n || ctx->inflight > 0) {
		while (ctx->next < n && ctx->free != NULL) {
			if (run_should_stop(r, ctx->taken)) {
				r->stats.left += n - ctx->next;
				ctx->next = n;
				break;
			}
			if (sync_start(ctx, eb) == -1)
				return -1;
		}
		if (ctx->inflight > 0 && s3_client_run(r->s3, 1000, eb) == -1)
			return -1;
	}
	return 0;
}

int
sync_run(struct run *r, struct errbuf *eb)
{
	struct walk_opts wo = { 0, 0 };
	struct sync_ctx ctx;
	size_t nitems, i;
	int rc = -1;

	memset(&ctx, 0, sizeof(ctx));
	ctx.r = r;
	ctx.workfd = -1;
	if (run_recover(r, eb) == -1)
		return -1;
	if (run_select(r, &wo, eb) == -1)
		return -1;
	sync_pending_reset(&ctx);
	ctx.pend = xcalloc(SYNC_SEAL_EVERY, sizeof(*ctx.pend));
	nitems = (size_t)r->cfg->concurrency * 2;
	ctx.items = xcalloc(nitems, sizeof(*ctx.items));
	for (i = 0; i < nitems; i++) {
		ctx.items[i].ctx = &ctx;
		ctx.items[i].fd = -1;
		ctx.items[i].next_free = ctx.free;
		ctx.free = &ctx.items[i];
	}
	if (sync_upload_all(&ctx, eb) == -1)
		goto out;
	sync_flush(&ctx);
	if (ctx.nsealed > 0)
		run_deliver(r, ctx.sealed, ctx.nsealed);
	rc = 0;
 out:
	for (i = 0; i < ctx.nsealed; i++)
		manifest_release(&ctx.sealed[i]);
	free(ctx.sealed);
	manifest_release(&ctx.pending);
	free(ctx.pend);
	if (ctx.workfd != -1)
		batch_stage_close(r->spool, ctx.workfd, ctx.workname);
	free(ctx.workname);
	free(ctx.items);
	return rc;
}
