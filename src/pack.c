/*
 * pack: plan, stage and upload for s3-batch. Every archive of the run is
 * built and sealed before the first upload starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "batch.h"
#include "log.h"
#include "manifest.h"
#include "names.h"
#include "pack.h"
#include "run.h"
#include "s3.h"
#include "spool.h"
#include "strbuf.h"
#include "tarball.h"
#include "walk.h"

#define PACK_SPACE_MARGIN	(64ULL * 1024 * 1024)

struct pack {
	struct run	*r;
	int		 workfd;
	char		*workname;
	struct manifest	*ms;		/* sealed this run */
	size_t		 n, alloc;
	uint64_t	 taken;		/* bytes packed */
	size_t		 next;		/* next file to consider */
	int		 stopped;	/* bounds or room: stage no more */
};

/* Room in the spool for an archive of this size, with a margin. */
static int
pack_room(struct pack *p, uint64_t need)
{
	struct statvfs sv;
	uint64_t avail;

	if (fstatvfs(p->workfd, &sv) == -1)
		return 1;
	avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return avail >= need + PACK_SPACE_MARGIN;
}

void
pack_walk_opts(struct walk_opts *wo)
{
	wo->raw_names = 1;
	wo->prefix_room = 41;	/* "/<uuid>.tar" */
}

size_t
pack_plan(const struct walk_entry *ents, size_t first, size_t end,
    uint64_t max, uint64_t *size)
{
	uint64_t total = tarball_end_size();
	size_t i;

	for (i = first; i < end; i++) {
		const struct walk_entry *e = &ents[i];
		uint64_t add = tarball_entry_size(e->name, strlen(e->name),
		    &e->st);

		if (add == UINT64_MAX)
			break;
		if (i > first && total + add > max)
			break;
		total += add;
	}
	*size = total;
	return i == first ? first + 1 : i;
}

static void
name_warn(const struct walk_entry *e, const char *why)
{
	struct strbuf name = STRBUF_INIT;

	name_escape(&name, e->key, e->key_len);
	log_warn("'%s/%s': %s", e->bucket, name.buf, why);
	strbuf_release(&name);
}

/* Add one file; 1 when it was left out (changed, vanished). */
static int
pack_add(struct pack *p, struct tarball *t, struct manifest *m,
    const struct walk_entry *e, struct errbuf *eb)
{
	struct manifest_entry *me;
	struct stat st;
	unsigned char sha[32];
	uint64_t off;
	int fd, rc;

	if ((fd = walk_openat(p->r->walk, e, &st, eb)) == -1) {
		name_warn(e, eb->sys_errno == ENOENT ? "vanished; passed over" :
		    "replaced since the walk; left for the next run");
		errbuf_clear(eb);
		p->r->stats.skipped++;
		return 1;
	}
	rc = tarball_add(t, e->name, strlen(e->name), fd, &e->st, &off, sha,
	    eb);
	close(fd);
	if (rc == 1) {
		name_warn(e, "changed while it was read; left for the next run");
		p->r->stats.left++;
		return 1;
	}
	if (rc == -1) {
		errbuf_prefix(eb, "archive of '%s/%s'", e->bucket, e->key);
		return -1;
	}
	me = manifest_add(m, e->bucket, e->key, e->key_len, e->name,
	    strlen(e->name), &e->st);
	me->data_offset = off;
	memcpy(me->sha256, sha, 32);
	return 0;
}

static void
pack_keep(struct pack *p, struct manifest *m)
{
	if (p->n == p->alloc) {
		p->alloc = p->alloc ? p->alloc * 2 : 16;
		p->ms = xrealloc(p->ms, p->alloc * sizeof(*p->ms));
	}
	p->ms[p->n++] = *m;
}

/* The archive's key: <directory prefix>/<uuid>.tar, and its URL. */
static void
pack_name(struct pack *p, struct manifest *m, const struct walk_dir *d)
{
	size_t i;

	m->archive_bucket = xstrdup(d->bucket);
	m->archive_key = d->prefix_len ? xasprintf("%s/%s.tar", d->prefix,
	    m->id) : xasprintf("%s.tar", m->id);
	for (i = 0; i < m->n; i++) {
		m->e[i].object_key = xstrdup(m->archive_key);
		m->e[i].url = s3_object_url(p->r->s3, m->archive_bucket,
		    m->archive_key);
	}
}

/* Build, fsync and seal one archive of files [first, end). */
static int
pack_archive(struct pack *p, size_t first, size_t end, struct errbuf *eb)
{
	struct run *r = p->r;
	const struct walk_entry *ents = r->files.entries;
	const struct walk_dir *d = walk_dir_get(r->walk, ents[first].dir);
	struct tarball *t = NULL;
	struct manifest m;
	struct stat st;
	int bfd = -1, tfd = -1, rc = -1;
	size_t i;

	manifest_init(&m, "s3-batch", r->run_id, r->host, time(NULL));
	if ((bfd = batch_stage_dir(p->workfd, m.id, eb)) == -1)
		goto out;
	tfd = openat(bfd, "archive.tar", O_RDWR | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (tfd == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: create archive");
		goto out;
	}
	if ((t = tarball_new(tfd, eb)) == NULL)
		goto out;
	for (i = first; i < end; i++)
		if (pack_add(p, t, &m, &ents[i], eb) == -1)
			goto out;
	if (m.n == 0) {
		rc = 0;		/* every file changed or vanished */
		goto out;
	}
	if (tarball_finish(t, eb) == -1)
		goto out;
	if (fsync(tfd) == -1 || fstat(tfd, &st) == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: fsync archive");
		goto out;
	}
	m.archive_size = (uint64_t)st.st_size;
	pack_name(p, &m, d);
	if (batch_seal(r->spool, p->workfd, bfd, &m, eb) == -1)
		goto out;
	p->taken += m.archive_size;
	pack_keep(p, &m);
	memset(&m, 0, sizeof(m));
	rc = 1;
 out:
	tarball_free(t);
	if (tfd != -1)
		close(tfd);
	if (bfd != -1)
		close(bfd);
	if (rc != 1 && m.id[0] != '\0') {
		/* not sealed: nothing was unlinked, drop what was built */
		char *path = xasprintf("%s/archive.tar", m.id);

		unlinkat(p->workfd, path, 0);
		free(path);
		path = xasprintf("%s/manifest.json", m.id);
		unlinkat(p->workfd, path, 0);
		free(path);
		unlinkat(p->workfd, m.id, AT_REMOVEDIR);
	}
	manifest_release(&m);
	return rc == 1 ? 0 : rc;
}

/* The archive is sealed: its originals go, if they are still the same. */
static void
pack_release(struct pack *p, const struct manifest *m, size_t first,
    size_t end)
{
	struct run *r = p->r;
	const struct walk_entry *ents = r->files.entries;
	struct errbuf eb;
	size_t i, j = 0;
	int rc;

	for (i = first; i < end && j < m->n; i++) {
		if (strcmp(ents[i].key, m->e[j].path) != 0)
			continue;	/* left out of the archive */
		j++;
		errbuf_clear(&eb);
		rc = walk_unlink_if_same(r->walk, &ents[i], &eb);
		if (rc == -1)
			run_fail(r, &eb);
		else if (rc == 1)
			name_warn(&ents[i], "changed after it was archived; "
			    "kept, it goes again next run");
	}
}

/* Pack files [first, end) of one directory. */
static int
pack_group(struct pack *p, size_t first, size_t end, struct errbuf *eb)
{
	size_t i = first, next, before;
	uint64_t size;

	while (i < end) {
		if (p->stopped || run_should_stop(p->r, p->taken))
			break;
		next = pack_plan(p->r->files.entries, i, end,
		    p->r->cfg->max_batch_bytes, &size);
		if (!pack_room(p, size)) {
			log_warn("spool: no room for an archive of %llu bytes in "
			    "'%s'; the rest waits for the next run",
			    (unsigned long long)size, spool_dir(p->r->spool));
			p->stopped = 1;
			break;
		}
		before = p->n;
		if (pack_archive(p, i, next, eb) == -1)
			return -1;
		if (p->n > before)
			pack_release(p, &p->ms[p->n - 1], i, next);
		i = next;
	}
	p->r->stats.left += end - i;
	return 0;
}

static int
pack_stage(struct pack *p, struct errbuf *eb)
{
	const struct walk_result *f = &p->r->files;
	size_t i = 0, j;

	if (f->n == 0)
		return 0;
	if ((p->workfd = batch_stage_open(p->r->spool, &p->workname,
	    eb)) == -1)
		return -1;
	while (i < f->n) {
		for (j = i + 1; j < f->n && f->entries[j].dir ==
		    f->entries[i].dir; j++)
			;
		if (pack_group(p, i, j, eb) == -1)
			return -1;
		i = j;
	}
	return 0;
}

/* ---- upload ---- */

struct pack_up {
	struct s3_put	 put;
	struct pack	*p;
	struct manifest	*m;
	int		 fd;
	char		*mpu_id;
	int		 ok;
};

static void
pack_up_id(struct s3_put *put, const char *upload_id)
{
	struct pack_up *u = put->arg;
	struct errbuf eb;

	errbuf_clear(&eb);
	if (spool_mpu_record(u->p->r->spool, put->bucket, put->key, upload_id,
	    &u->mpu_id, &eb) == -1)
		log_warn("multipart upload of 's3://%s/%s' not recorded: %s",
		    put->bucket, put->key, eb.msg);
}

static void
pack_up_done(struct s3_put *put)
{
	struct pack_up *u = put->arg;
	struct run *r = u->p->r;
	struct errbuf eb;

	errbuf_clear(&eb);
	if (put->failed)
		run_fail(r, &put->eb);
	else {
		u->ok = 1;
		r->stats.objects++;
		r->stats.sent += u->m->archive_size;
		r->stats.files += u->m->n;
		for (size_t i = 0; i < u->m->n; i++)
			r->stats.bytes += u->m->e[i].size;
		log_info("s3://%s/%s: %zu files, %llu bytes", put->bucket,
		    put->key, u->m->n, (unsigned long long)u->m->archive_size);
	}
	if (u->mpu_id != NULL && !put->upload_left &&
	    spool_mpu_forget(r->spool, u->mpu_id, &eb) == -1)
		log_warn("%s", eb.msg);
	free(u->mpu_id);
	u->mpu_id = NULL;
	close(u->fd);
	u->fd = -1;
}

static int
pack_upload(struct pack *p, struct pack_up *ups, struct errbuf *eb)
{
	struct run *r = p->r;
	size_t next = 0;
	int limit = r->cfg->concurrency;

	while (next < p->n || s3_client_busy(r->s3) > 0) {
		while (next < p->n && s3_client_busy(r->s3) < limit &&
		    !run_should_stop(r, 0)) {
			struct pack_up *u = &ups[next];
			off_t size;

			u->p = p;
			u->m = &p->ms[next++];
			u->fd = batch_open_archive(r->spool, u->m->id, &size,
			    eb);
			if (u->fd == -1)
				return -1;
			u->put.bucket = u->m->archive_bucket;
			u->put.key = u->m->archive_key;
			u->put.fd = u->fd;
			u->put.size = size;
			u->put.content_type = "application/x-tar";
			u->put.on_upload_id = pack_up_id;
			u->put.done = pack_up_done;
			u->put.arg = u;
			if (s3_put_start(r->s3, &u->put, eb) == -1)
				return -1;
		}
		if (next < p->n && run_should_stop(r, 0)) {
			/* they stay sealed: the next run's recovery sends them */
			r->stats.left += p->n - next;
			next = p->n;
		}
		if (s3_client_busy(r->s3) > 0 &&
		    s3_client_run(r->s3, 1000, eb) == -1)
			return -1;
	}
	return 0;
}

int
pack_run(struct run *r, struct errbuf *eb)
{
	struct walk_opts wo;
	struct pack p;
	struct pack_up *ups = NULL;
	struct manifest *done = NULL;
	size_t i, ndone = 0;
	int rc = -1;

	memset(&p, 0, sizeof(p));
	p.r = r;
	p.workfd = -1;
	pack_walk_opts(&wo);
	if (run_recover(r, eb) == -1)
		goto out;
	if (run_select(r, &wo, eb) == -1)
		goto out;
	if (pack_stage(&p, eb) == -1) {
		/* what was sealed still goes up; the error decides the exit */
		run_fail(r, eb);
		errbuf_clear(eb);
	}
	ups = xcalloc(p.n ? p.n : 1, sizeof(*ups));
	for (i = 0; i < p.n; i++)
		ups[i].fd = -1;
	if (pack_upload(&p, ups, eb) == -1)
		goto out;
	done = xcalloc(p.n ? p.n : 1, sizeof(*done));
	for (i = 0; i < p.n; i++)
		if (ups[i].ok)
			done[ndone++] = p.ms[i];
	if (ndone > 0)
		run_deliver(r, done, ndone);
	rc = 0;
 out:
	free(done);
	if (ups != NULL)
		for (i = 0; i < p.n; i++)
			if (ups[i].fd != -1)
				close(ups[i].fd);
	free(ups);
	for (i = 0; i < p.n; i++)
		manifest_release(&p.ms[i]);
	free(p.ms);
	if (p.workfd != -1 || p.workname != NULL)
		batch_stage_close(r->spool, p.workfd, p.workname);
	free(p.workname);
	return rc;
}
