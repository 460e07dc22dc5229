/*
 * deliver: the index and release stages both tools share, and recovery,
 * which is the same stages run on what an earlier run left sealed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "es.h"
#include "log.h"
#include "manifest.h"
#include "run.h"
#include "s3.h"
#include "spool.h"
#include "strbuf.h"
#include "walk.h"

/* Index every entry of every batch at once; results in res[]. */
static void
deliver_es(struct run *r, struct manifest *ms, size_t n, enum es_item *res,
    size_t total)
{
	struct es_doc *docs = xcalloc(total, sizeof(*docs));
	struct strbuf *json = xcalloc(total, sizeof(*json));
	char (*ids)[65] = xcalloc(total, sizeof(*ids));
	struct errbuf eb;
	size_t b, i, k = 0;

	errbuf_clear(&eb);
	if (!r->es_template) {
		if (es_ensure_template(r->es, &eb) == 0)
			r->es_template = 1;
		else
			log_warn("%s", eb.msg);
	}
	for (b = 0; b < n; b++) {
		for (i = 0; i < ms[b].n; i++, k++) {
			manifest_doc(&ms[b], i, &json[k]);
			manifest_doc_id(&ms[b], i, ids[k]);
			docs[k].id = ids[k];
			docs[k].json = json[k].buf;
			docs[k].json_len = json[k].len;
		}
	}
	errbuf_clear(&eb);
	if (es_bulk(r->es, docs, total, res, &eb) == -1) {
		log_warn("%s", eb.msg);
		for (k = 0; k < total; k++)
			res[k] = ES_ITEM_UNSENT;
	} else if (eb.kind != ERR_NONE)
		log_warn("%s; the rest goes to the fallback bucket", eb.msg);
	for (k = 0; k < total; k++)
		strbuf_release(&json[k]);
	free(json);
	free(ids);
	free(docs);
}

/* The entries ElasticSearch did not take, as one object per batch. */
static int
deliver_fallback(struct run *r, const struct manifest *m,
    const unsigned char *want, struct errbuf *eb)
{
	struct strbuf body = STRBUF_INIT;
	char *key = manifest_fallback_key(m, r->cfg->fallback_prefix);
	struct s3_put put;
	int rc;

	manifest_fallback(m, want, &body);
	memset(&put, 0, sizeof(put));
	put.bucket = r->cfg->fallback_bucket;
	put.key = key;
	put.fd = -1;
	put.data = body.buf;
	put.len = body.len;
	put.content_type = "application/json";
	rc = s3_put_wait(r->s3, &put, eb);
	if (rc == 0)
		log_info("manifest of batch %s -> s3://%s/%s", m->id,
		    put.bucket, key);
	free(key);
	strbuf_release(&body);
	return rc;
}

void
run_deliver(struct run *r, struct manifest *ms, size_t n)
{
	enum es_item *res;
	size_t total = 0, b, i, k = 0;
	struct errbuf eb;

	for (b = 0; b < n; b++)
		total += ms[b].n;
	res = xcalloc(total ? total : 1, sizeof(*res));
	if (total > 0)
		deliver_es(r, ms, n, res, total);
	for (b = 0; b < n; b++) {
		unsigned char *want = xcalloc(ms[b].n ? ms[b].n : 1, 1);
		size_t nwant = 0;

		for (i = 0; i < ms[b].n; i++, k++)
			if ((want[i] = res[k] != ES_ITEM_OK))
				nwant++;
		errbuf_clear(&eb);
		if (nwant > 0 && deliver_fallback(r, &ms[b], want, &eb) == -1) {
			errbuf_prefix(&eb, "manifest of batch %s stays in the "
			    "spool", ms[b].id);
			run_fail(r, &eb);
		} else if (batch_clear(r->spool, ms[b].id, &eb) == -1)
			run_fail(r, &eb);
		free(want);
	}
	free(res);
}

/* ---- recovery ---- */

static void
entry_snapshot(const struct manifest_entry *e, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG;
	st->st_dev = (dev_t)e->dev;
	st->st_ino = (ino_t)e->ino;
	st->st_size = (off_t)e->size;
	st->st_nlink = (nlink_t)e->nlink;
	st->st_mtim.tv_sec = e->mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = e->mtime_ns % 1000000000;
	st->st_ctim.tv_sec = e->ctime_ns / 1000000000;
	st->st_ctim.tv_nsec = e->ctime_ns % 1000000000;
}

/* The originals a sealed batch holds that are still there, unchanged. */
static void
recover_unlink(struct run *r, const struct manifest *m)
{
	struct errbuf eb;
	struct stat st;
	size_t i;

	for (i = 0; i < m->n; i++) {
		const struct manifest_entry *e = &m->e[i];

		errbuf_clear(&eb);
		entry_snapshot(e, &st);
		if (walk_unlink_path(r->cfg->root, e->bucket, e->path,
		    e->path_len, &st, &eb) == -1)
			run_fail(r, &eb);
	}
}

/* The archive is in S3 under its key with its size, or goes up now. */
static int
recover_upload(struct run *r, const struct manifest *m, struct errbuf *eb)
{
	struct s3_put put;
	off_t fsize;
	int fd, rc;

	if ((fd = batch_open_archive(r->spool, m->id, &fsize, eb)) == -1)
		return -1;
	rc = s3_object_matches(r->s3, m->archive_bucket, m->archive_key, fd,
	    fsize, eb);
	if (rc != 0) {
		close(fd);
		return rc == 1 ? 0 : -1;
	}
	memset(&put, 0, sizeof(put));
	put.bucket = m->archive_bucket;
	put.key = m->archive_key;
	put.fd = fd;
	put.size = fsize;
	rc = s3_put_wait(r->s3, &put, eb);
	close(fd);
	if (rc == 0) {
		r->stats.objects++;
		r->stats.sent += m->archive_size;
		log_info("recovery: s3://%s/%s uploaded", m->archive_bucket,
		    m->archive_key);
	}
	return rc;
}

/* 1 when the batch's fallback object exists, 0 when not, -1 (eb). */
static int
recover_delivered(struct run *r, const struct manifest *m, struct errbuf *eb)
{
	char *key = manifest_fallback_key(m, r->cfg->fallback_prefix);
	int rc;

	rc = s3_head(r->s3, r->cfg->fallback_bucket, key, NULL, NULL, 0, eb);
	if (rc == 1)
		log_info("recovery: batch %s was delivered (s3://%s/%s)", m->id,
		    r->cfg->fallback_bucket, key);
	free(key);
	return rc;
}

struct recover_ctx {
	struct run	*r;
	struct manifest	*ms;
	size_t		 n, alloc;
};

static int
recover_batch(void *arg, const char *id)
{
	struct recover_ctx *rc = arg;
	struct run *r = rc->r;
	struct manifest m;
	struct errbuf eb;

	errbuf_clear(&eb);
	if (batch_load(r->spool, id, &m, &eb) == -1) {
		run_fail(r, &eb);
		return 0;
	}
	log_info("recovery: finishing batch %s (%zu files)", id, m.n);
	recover_unlink(r, &m);
	if (m.archive_key != NULL && recover_upload(r, &m, &eb) == -1) {
		run_fail(r, &eb);
		manifest_release(&m);
		return 0;
	}
	/*
	 * The fallback object is written after the ElasticSearch pass: if it
	 * is there, the batch was delivered and only its clearing was cut off.
	 * Delivering again could put an entry in both places.
	 */
	switch (recover_delivered(r, &m, &eb)) {
	case -1:
		errbuf_prefix(&eb, "recovery: batch %s waits", id);
		run_fail(r, &eb);
		/* FALLTHROUGH */
	case 1:
		if (eb.kind == ERR_NONE && batch_clear(r->spool, id, &eb) == -1)
			run_fail(r, &eb);
		manifest_release(&m);
		return 0;
	default:
		break;
	}
	if (rc->n == rc->alloc) {
		rc->alloc = rc->alloc ? rc->alloc * 2 : 8;
		rc->ms = xrealloc(rc->ms, rc->alloc * sizeof(*rc->ms));
	}
	rc->ms[rc->n++] = m;
	return 0;
}

int
run_recover(struct run *r, struct errbuf *eb)
{
	struct recover_ctx rc = { r, NULL, 0, 0 };
	struct errbuf ueb;
	size_t i;

	if (batch_clean_work(r->spool, eb) == -1)
		return -1;
	errbuf_clear(&ueb);
	if (run_recover_multipart(r, &ueb) == -1)
		run_fail(r, &ueb);
	if (batch_each(r->spool, recover_batch, &rc, eb) == -1)
		return -1;
	if (rc.n > 0)
		run_deliver(r, rc.ms, rc.n);
	for (i = 0; i < rc.n; i++)
		manifest_release(&rc.ms[i]);
	free(rc.ms);
	return 0;
}
