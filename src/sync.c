/*
 * sync: the upload stage of s3-sync. Files are taken in walk order; at most
 * twice the concurrency are open at once, so descriptors and memory stay
 * flat whatever the number of files.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
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

struct sync_ctx {
	struct run		*r;
	struct sync_item	*items;
	struct sync_item	*free;
	size_t			 next;		/* next entry to start */
	int			 inflight;
	uint64_t		 taken;		/* bytes started */
};

static void
sync_on_upload_id(struct s3_put *put, const char *upload_id)
{
	struct sync_item *it = put->arg;
	struct errbuf eb;

	errbuf_clear(&eb);
	if (spool_mpu_record(it->ctx->r->spool, put->bucket, put->key,
	    upload_id, &it->mpu_id, &eb) == -1)
		log_warn("%s", eb.msg);
}

/* S3 has the object: remove the original if it is still what was sent. */
static void
sync_release(struct sync_item *it)
{
	struct run *r = it->ctx->r;
	const struct walk_entry *e = it->e;
	struct strbuf name = STRBUF_INIT;
	struct stat st;
	struct errbuf eb;
	int rc;

	errbuf_clear(&eb);
	r->stats.objects++;
	name_escape(&name, e->key, e->key_len);
	if (fstat(it->fd, &st) == -1 || !walk_identity_same(&e->st, &st)) {
		log_warn("'%s/%s': changed while it was uploaded; kept for the "
		    "next run", e->bucket, name.buf);
		r->stats.left++;
		goto out;
	}
	rc = walk_unlink_if_same(r->walk, e, &eb);
	if (rc == -1)
		run_fail(r, &eb);
	else if (rc == 1) {
		log_warn("'%s/%s': replaced while it was uploaded; kept for "
		    "the next run", e->bucket, name.buf);
		r->stats.left++;
	} else {
		log_info("'%s/%s' -> s3://%s/%s (%lld bytes)", e->bucket,
		    name.buf, e->bucket, name.buf, (long long)e->st.st_size);
		r->stats.files++;
		r->stats.bytes += (uint64_t)e->st.st_size;
	}
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
	if (run_recover_multipart(r, eb) == -1) {
		run_fail(r, eb);
		errbuf_clear(eb);
	}
	if (run_select(r, &wo, eb) == -1)
		return -1;
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
	rc = 0;
 out:
	free(ctx.items);
	return rc;
}
