/*
 * tool_dryrun: --dry-run. The selection of a real run (walk, open files,
 * settle time, ignore globs, the run's byte bound) and, for s3-batch, the
 * archives the files would be packed into, printed on stdout. Nothing is
 * created, locked, recovered or sent: no spool, no HTTP, no credentials.
 */
#include <string.h>
#include <time.h>

#include "filter.h"
#include "names.h"
#include "openfiles.h"
#include "strbuf.h"
#include "pack.h"
#include "tool.h"
#include "walk.h"

struct dry {
	const struct config	*cfg;
	FILE			*out;
	uint64_t		 taken;		/* bytes a run would take */
	size_t			 files;
	size_t			 archives;
	size_t			 left;		/* beyond S3BATCH_MAX_RUN_MB */
};

static int
over_bound(const struct dry *d)
{
	return d->cfg->max_run_bytes > 0 && d->taken >= d->cfg->max_run_bytes;
}

static void
print_file(struct dry *d, const struct walk_entry *e, const char *archive)
{
	struct strbuf name = STRBUF_INIT;

	name_escape(&name, e->key, e->key_len);
	fprintf(d->out, "%s/%s %lld", e->bucket, name.buf,
	    (long long)e->st.st_size);
	if (archive != NULL)
		fprintf(d->out, " -> %s", archive);
	fputc('\n', d->out);
	strbuf_release(&name);
	d->files++;
}

/* s3-sync: each file as its own object. */
static void
dry_sync(struct dry *d, const struct walk_result *f)
{
	size_t i;

	for (i = 0; i < f->n; i++) {
		if (over_bound(d)) {
			d->left = f->n - i;
			return;
		}
		print_file(d, &f->entries[i], NULL);
		d->taken += (uint64_t)f->entries[i].st.st_size;
	}
}

/* s3-batch: one directory's files, in archives of MAX_BATCH_SIZE_MB. */
static void
dry_group(struct dry *d, const struct walk_result *f, size_t first,
    size_t end)
{
	const struct walk_entry *e0 = &f->entries[first];
	struct strbuf label = STRBUF_INIT;
	size_t i = first, next, dirlen = e0->key_len - strlen(e0->name);
	uint64_t size;

	while (i < end) {
		if (over_bound(d)) {
			d->left += end - i;
			break;
		}
		next = pack_plan(f->entries, i, end, d->cfg->max_batch_bytes,
		    &size);
		d->archives++;
		strbuf_reset(&label);
		strbuf_addf(&label, "s3://%s/", e0->bucket);
		name_escape(&label, e0->key, dirlen);
		strbuf_addf(&label, "<archive %zu, %llu bytes>.tar",
		    d->archives, (unsigned long long)size);
		for (; i < next; i++)
			print_file(d, &f->entries[i], label.buf);
		d->taken += size;
	}
	strbuf_release(&label);
}

static void
dry_batch(struct dry *d, const struct walk_result *f)
{
	size_t i = 0, j;

	while (i < f->n) {
		for (j = i + 1; j < f->n && f->entries[j].dir ==
		    f->entries[i].dir; j++)
			;
		dry_group(d, f, i, j);
		i = j;
	}
}

static void
dry_footer(const struct dry *d, const struct filter_stats *fs,
    const struct walk_result *f)
{
	char bytes[32];

	fprintf(d->out, "%zu file%s, %s", d->files, d->files == 1 ? "" : "s",
	    tool_fmt_bytes(bytes, sizeof(bytes), d->taken));
	if (d->cfg->tool == TOOL_BATCH)
		fprintf(d->out, " in %zu archive%s", d->archives,
		    d->archives == 1 ? "" : "s");
	fprintf(d->out, " would be taken; passed over: %zu ignored, %zu open, "
	    "%zu younger than %ld s, %zu unusable names",
	    fs->ignored, fs->open, fs->young, fs->settle, f->skipped);
	if (d->left > 0)
		fprintf(d->out, "; %zu left for later runs (S3BATCH_MAX_RUN_MB)",
		    d->left);
	fputc('\n', d->out);
}

int
tool_dry_run(const struct config *cfg, FILE *out)
{
	/* the same walk options as sync.c and pack.c */
	struct walk_opts wo = { cfg->tool == TOOL_BATCH, 0 };
	struct walk_result files;
	struct filter_opts fo;
	struct filter_stats fs;
	struct openfiles *of = NULL;
	struct walk *w = NULL;
	struct errbuf eb;
	struct dry d;
	int status = 0;

	errbuf_clear(&eb);
	if (cfg->tool == TOOL_BATCH)
		pack_walk_opts(&wo);
	if ((w = walk_open(cfg->root, &wo, &eb)) == NULL ||
	    walk_run(w, &files, &eb) == -1 ||
	    (of = openfiles_scan(&eb)) == NULL) {
		log_error("%s", eb.msg);
		status = errbuf_exit_status(&eb);
		goto out;
	}
	memset(&fo, 0, sizeof(fo));
	fo.settle_seconds = cfg->settle_seconds;
	fo.ignore = cfg->ignore;
	fo.now = time(NULL);
	memset(&fs, 0, sizeof(fs));
	filter_apply(&files, &fo, of, &fs);
	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	d.out = out;
	if (cfg->tool == TOOL_BATCH)
		dry_batch(&d, &files);
	else
		dry_sync(&d, &files);
	dry_footer(&d, &fs, &files);
	fflush(out);
 out:
	openfiles_free(of);
	walk_free(w);
	return status;
}
