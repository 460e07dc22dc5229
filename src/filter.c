#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "log.h"
#include "names.h"
#include "strbuf.h"

/* The ignore globs, split once per run. */
struct globs {
	char	 *buf;
	char	**v;
	size_t	  n;
};

static void
globs_split(struct globs *g, const char *list)
{
	char *p;
	size_t n = 1;

	if (list == NULL)
		list = FILTER_IGNORE_DEFAULT;
	g->buf = xstrdup(list);
	for (p = g->buf; *p != '\0'; p++)
		n += *p == ':';
	g->v = xcalloc(n, sizeof(*g->v));
	g->n = 0;
	for (p = g->buf; p != NULL; ) {
		char *colon = strchr(p, ':');

		if (colon != NULL)
			*colon++ = '\0';
		if (*p != '\0')		/* "a::b" and "" hold no empty glob */
			g->v[g->n++] = p;
		p = colon;
	}
}

static void
globs_release(struct globs *g)
{
	free(g->v);
	free(g->buf);
}

/* The glob that name matches, or NULL. */
static const char *
globs_match(const struct globs *g, const char *name)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		if (fnmatch(g->v[i], name, 0) == 0)
			return g->v[i];
	return NULL;
}

int
filter_ignored(const char *list, const char *name, char **which)
{
	struct globs g;
	const char *m;

	globs_split(&g, list);
	m = globs_match(&g, name);
	if (m != NULL && which != NULL)
		*which = xstrdup(m);
	globs_release(&g);
	return m != NULL;
}

/* max(mtime, ctime), rounded up to a whole second. */
static time_t
changed_at(const struct stat *st)
{
	const struct timespec *t = &st->st_mtim;

	if (st->st_ctim.tv_sec > t->tv_sec || (st->st_ctim.tv_sec ==
	    t->tv_sec && st->st_ctim.tv_nsec > t->tv_nsec))
		t = &st->st_ctim;
	return t->tv_sec + (t->tv_nsec > 0);
}

/* "'<bucket>/<key>': why" at info level. */
static void
say_skip(const struct walk_entry *e, const char *why)
{
	struct strbuf sb = STRBUF_INIT;

	if (!log_enabled(LOG_LVL_INFO))
		return;
	name_escape(&sb, e->bucket, strlen(e->bucket));
	strbuf_addch(&sb, '/');
	name_escape(&sb, e->key, e->key_len);
	log_info("'%s': %s", sb.buf, why);
	strbuf_release(&sb);
}

/* The settle time to apply, after saying once if the scan fell short. */
static long
filter_settle(const struct filter_opts *o, const struct openfiles *of)
{
	long settle = o->settle_seconds < 0 ? 0 : o->settle_seconds;

	if (of != NULL && openfiles_complete(of))
		return settle;
	log_warn("cannot read every process's open files (%s); applying a "
	    "settle time of at least %d s", of == NULL ? "not scanned" :
	    openfiles_why(of), FILTER_SETTLE_UNSURE);
	return settle < FILTER_SETTLE_UNSURE ? FILTER_SETTLE_UNSURE : settle;
}

void
filter_apply(struct walk_result *files, const struct filter_opts *o,
    const struct openfiles *of, struct filter_stats *st)
{
	struct filter_stats s;
	struct walk_entry *e;
	struct globs g;
	const char *glob;
	char why[256];
	time_t age;
	size_t i, kept = 0;

	memset(&s, 0, sizeof(s));
	s.scan_complete = of != NULL && openfiles_complete(of);
	s.settle = filter_settle(o, of);
	globs_split(&g, o->ignore);
	for (i = 0; i < files->n; i++) {
		e = &files->entries[i];
		age = o->now - changed_at(&e->st);
		if ((glob = globs_match(&g, e->name)) != NULL) {
			snprintf(why, sizeof(why), "name matches ignore glob "
			    "'%.200s', left in place", glob);
			say_skip(e, why);
			s.ignored++;
		} else if (of != NULL && openfiles_contains(of, e->st.st_dev,
		    e->st.st_ino)) {
			say_skip(e, "open in some process, left for a later "
			    "run");
			s.open++;
		} else if (s.settle > 0 && age < s.settle) {
			snprintf(why, sizeof(why), "changed %ld s ago, within "
			    "the settle time of %ld s, left for a later run",
			    (long)(age < 0 ? 0 : age), s.settle);
			say_skip(e, why);
			s.young++;
		} else {
			if (kept != i)
				files->entries[kept] = *e;
			kept++;
		}
	}
	globs_release(&g);
	files->n = kept;
	s.taken = kept;
	if (st != NULL)
		*st = s;
}
