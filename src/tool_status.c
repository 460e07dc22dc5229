/*
 * tool_status: --status. What waits in the spool of each tool, read
 * without the lock and without talking to any server, so an operator can
 * look while a run is going: sealed batches and their bytes, manifests
 * not yet delivered, multipart uploads to abort, unsealed staging
 * directories, the oldest one's age, the run holding the lock (from
 * /proc/locks) and the end of the last run that left nothing behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sysexits.h>
#include <time.h>

#include "names.h"
#include "spool.h"
#include "strbuf.h"
#include "tool.h"

struct status_item {
	enum spool_item_kind	 kind;
	char			*name;
	char			*what;		/* bucket/key of an mpu */
	time_t			 mtime;
	int			 has_archive, has_manifest;
	unsigned long long	 archive_bytes, manifest_bytes;
};

struct status_list {
	struct status_item	*v;
	size_t			 n, alloc;
};

static void
collect(void *arg, const struct spool_item *it)
{
	struct status_list *l = arg;
	struct status_item *s;
	struct strbuf sb = STRBUF_INIT;

	if (l->n == l->alloc) {
		l->alloc = l->alloc ? l->alloc * 2 : 16;
		l->v = xrealloc(l->v, l->alloc * sizeof(*l->v));
	}
	s = &l->v[l->n++];
	memset(s, 0, sizeof(*s));
	s->kind = it->kind;
	s->name = xstrdup(it->name);
	s->mtime = it->mtime;
	s->has_archive = it->has_archive;
	s->has_manifest = it->has_manifest;
	s->archive_bytes = it->archive_bytes;
	s->manifest_bytes = it->manifest_bytes;
	if (it->bucket != NULL) {
		strbuf_addf(&sb, "s3://%s/", it->bucket);
		name_escape(&sb, it->key, strlen(it->key));
		s->what = strbuf_detach(&sb, NULL);
	}
}

static int
by_age(const void *a, const void *b)
{
	const struct status_item *x = a, *y = b;

	return (x->mtime > y->mtime) - (x->mtime < y->mtime);
}

static void
list_free(struct status_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].what);
	}
	free(l->v);
}

static void
iso_time(char *buf, size_t len, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * The pid holding an flock on path, from /proc/locks ("1: FLOCK ADVISORY
 * WRITE <pid> <maj>:<min>:<ino> 0 EOF"); 0 when none. Reads only: taking
 * the lock to test it could make a starting run exit 75.
 */
static long
lock_holder(const char *path)
{
	struct stat st;
	unsigned int maj, min;
	unsigned long long ino;
	char line[256], type[16];
	long pid, found = 0;
	FILE *f;

	if (stat(path, &st) == -1 || (f = fopen("/proc/locks", "re")) == NULL)
		return 0;
	while (found == 0 && fgets(line, sizeof(line), f) != NULL) {
		/* "1: -> FLOCK ..." lines are waiters, not holders */
		if (strstr(line, "->") != NULL ||
		    sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%llu", type, &pid,
		    &maj, &min, &ino) != 5 || strcmp(type, "FLOCK") != 0)
			continue;
		if (maj == major(st.st_dev) && min == minor(st.st_dev) &&
		    ino == (unsigned long long)st.st_ino)
			found = pid > 0 ? pid : -1;
	}
	fclose(f);
	return found;
}

static void
print_totals(FILE *out, const struct spool_status *st, time_t now)
{
	char a[32], m[32], age[32], when[32];

	if (st->batches == 0 && st->mpus == 0 && st->staging == 0)
		fprintf(out, "  nothing waits\n");
	else {
		fprintf(out, "  waiting: %zu sealed batch%s: %zu archive%s "
		    "(%s), %zu manifest%s (%s); %zu multipart upload%s to "
		    "abort; %zu unsealed staging director%s\n",
		    st->batches, st->batches == 1 ? "" : "es",
		    st->archives, st->archives == 1 ? "" : "s",
		    tool_fmt_bytes(a, sizeof(a), st->archive_bytes),
		    st->manifests, st->manifests == 1 ? "" : "s",
		    tool_fmt_bytes(m, sizeof(m), st->manifest_bytes),
		    st->mpus, st->mpus == 1 ? "" : "s",
		    st->staging, st->staging == 1 ? "y" : "ies");
		if (st->oldest != 0)
			fprintf(out, "  oldest: %s old\n", tool_fmt_age(age,
			    sizeof(age), (long long)(now - st->oldest)));
	}
	if (st->last_success == 0)
		fprintf(out, "  last successful run: never\n");
	else {
		iso_time(when, sizeof(when), st->last_success);
		fprintf(out, "  last successful run: %s (%s ago)\n", when,
		    tool_fmt_age(age, sizeof(age),
		    (long long)(now - st->last_success)));
	}
}

static void
print_item(FILE *out, const struct status_item *it, time_t now)
{
	char a[32], m[32], age[32];

	tool_fmt_age(age, sizeof(age), (long long)(now - it->mtime));
	switch (it->kind) {
	case SPOOL_ITEM_BATCH:
		fprintf(out, "  batch %s: archive %s, manifest %s, %s old\n",
		    it->name, it->has_archive ?
		    tool_fmt_bytes(a, sizeof(a), it->archive_bytes) : "none",
		    it->has_manifest ?
		    tool_fmt_bytes(m, sizeof(m), it->manifest_bytes) : "none",
		    age);
		break;
	case SPOOL_ITEM_MPU:
		fprintf(out, "  multipart upload %s: %s, %s old\n", it->name,
		    it->what != NULL ? it->what : "(unreadable record)", age);
		break;
	case SPOOL_ITEM_STAGING:
		fprintf(out, "  staging %s: unsealed, the next run deletes "
		    "it, %s old\n", it->name, age);
		break;
	}
}

static int
status_one(FILE *out, const char *tool, const char *dir, time_t now)
{
	struct status_list l = { NULL, 0, 0 };
	struct spool_status st;
	struct errbuf eb;
	char *lock;
	long pid;
	size_t i;

	errbuf_clear(&eb);
	fprintf(out, "%s: spool '%s'\n", tool, dir);
	if (spool_status_read(dir, &st, collect, &l, &eb) == -1) {
		log_error("%s", eb.msg);
		list_free(&l);
		return -1;
	}
	if (!st.exists) {
		fprintf(out, "  no spool yet: no run has started\n");
		return 0;
	}
	lock = xasprintf("%s/lock", dir);
	if ((pid = lock_holder(lock)) > 0)
		fprintf(out, "  a run holds the lock: pid %ld\n", pid);
	else if (pid < 0)
		fprintf(out, "  a run holds the lock\n");
	free(lock);
	print_totals(out, &st, now);
	qsort(l.v, l.n, sizeof(*l.v), by_age);
	for (i = 0; i < l.n; i++)
		print_item(out, &l.v[i], now);
	list_free(&l);
	return 0;
}

int
tool_status(const struct config *cfg, FILE *out)
{
	static const char *const tools[] = { "s3-batch", "s3-sync" };
	const char *slash = strrchr(cfg->spool_dir, '/');
	size_t baselen = slash != NULL ? (size_t)(slash - cfg->spool_dir) : 0;
	time_t now = time(NULL);
	char *dir;
	int i, rc = 0;

	/* this tool's spool first, then the other tool's beside it */
	if (status_one(out, cfg->tool_name, cfg->spool_dir, now) == -1)
		rc = EX_IOERR;
	for (i = 0; i < 2; i++) {
		if (strcmp(tools[i], cfg->tool_name) == 0)
			continue;
		dir = xasprintf("%.*s/%s", (int)baselen, cfg->spool_dir,
		    tools[i]);
		if (status_one(out, tools[i], dir, now) == -1)
			rc = EX_IOERR;
		free(dir);
	}
	fflush(out);
	return rc;
}
