#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "names.h"
#include "strbuf.h"
#include "walk.h"

#define ARENA_CHUNK	(64 * 1024)
#define FD_RESERVE	1024	/* descriptors left to later stages */
#define COUNT_DEPTH	64	/* levels of a skipped folder counted */
#define SHOW_MAX	512	/* bytes of a name shown in a message */
#define NO_DIR		SIZE_MAX

/* Strings live in big chunks: one malloc per 64 KiB, not one per file. */
struct arena_chunk {
	struct arena_chunk *next;
	size_t		 used, size;
	char		 data[];
};

struct walk {
	int		 root_fd;
	char		*root;
	struct walk_opts opts;
	int		 ran;
	int		 stop;		/* out of descriptors to hold */
	size_t		 max_held;
	size_t		 skipped;
	struct walk_dir	*dirs;
	size_t		 ndirs, adirs;
	struct walk_entry *ents;
	size_t		 nents, aents;
	struct arena_chunk *arena;
	struct strbuf	 prefix;	/* key prefix of the folder in hand */
};

/* One directory being read. */
struct scan {
	int		 fd;
	const char	*bucket;
	size_t		 dir;		/* in w->dirs; NO_DIR until held */
};

/* Names of a directory's subdirectories, sorted before descending. */
struct namelist {
	struct strbuf	 buf;
	size_t		*off;
	size_t		 n, alloc;
};

static char *
arena_alloc(struct walk *w, size_t n)
{
	struct arena_chunk *c = w->arena;
	size_t size;

	if (c == NULL || c->size - c->used < n) {
		size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		c = xmalloc(sizeof(*c) + size);
		c->used = 0;
		c->size = size;
		c->next = w->arena;
		w->arena = c;
	}
	c->used += n;
	return c->data + c->used - n;
}

/* Copy a (NUL-free) string of len bytes into the arena. */
static const char *
arena_strndup(struct walk *w, const char *s, size_t len)
{
	char *p = arena_alloc(w, len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* Escaped, length-capped display of a name; cut at a UTF-8 boundary. */
static void
show_name(struct strbuf *sb, const char *s, size_t len)
{
	size_t cut = len;

	if (len > SHOW_MAX) {
		cut = SHOW_MAX;
		while (cut > 0 && ((unsigned char)s[cut] & 0xc0) == 0x80)
			cut--;
	}
	name_escape(sb, s, cut);
	if (cut < len)
		strbuf_adds(sb, "...");
}

/*
 * One line about a name under the root: "'<bucket>/<prefix>/<name>': why".
 * bucket or name may be NULL.
 */
static void
walk_say(struct walk *w, enum log_level lvl, const char *bucket,
    const char *name, size_t nlen, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static void
walk_say(struct walk *w, enum log_level lvl, const char *bucket,
    const char *name, size_t nlen, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	char why[256];
	va_list ap;

	if (!log_enabled(lvl))
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	strbuf_addch(&sb, '\'');
	if (bucket != NULL) {
		show_name(&sb, bucket, strlen(bucket));
		strbuf_addch(&sb, '/');
		if (w->prefix.len > 0) {
			show_name(&sb, w->prefix.buf, w->prefix.len);
			strbuf_addch(&sb, '/');
		}
	}
	if (name != NULL)
		show_name(&sb, name, nlen);
	strbuf_addf(&sb, "': %s", why);
	if (lvl == LOG_LVL_WARN)
		log_warn("%s", sb.buf);
	else
		log_info("%s", sb.buf);
	strbuf_release(&sb);
}

static void
namelist_add(struct namelist *nl, const char *name)
{
	if (nl->n == nl->alloc) {
		nl->alloc = nl->alloc ? 2 * nl->alloc : 16;
		nl->off = xrealloc(nl->off, nl->alloc * sizeof(*nl->off));
	}
	nl->off[nl->n++] = nl->buf.len;
	strbuf_add(&nl->buf, name, strlen(name) + 1);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in byte order; the array is the caller's to free. */
static char **
namelist_sorted(struct namelist *nl)
{
	char **v = xcalloc(nl->n, sizeof(*v));
	size_t i;

	for (i = 0; i < nl->n; i++)
		v[i] = nl->buf.buf + nl->off[i];
	qsort(v, nl->n, sizeof(*v), cmp_str);
	return v;
}

static void
namelist_release(struct namelist *nl)
{
	strbuf_release(&nl->buf);
	free(nl->off);
}

static int
cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct walk_entry *)a)->name,
	    ((const struct walk_entry *)b)->name);
}

static int
fatal_errno(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOMEM;
}

static void
raise_nofile(struct walk *w)
{
	struct rlimit rl;
	rlim_t lim;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		rl.rlim_cur = rl.rlim_max = 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		lim = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			rl.rlim_cur = lim;
	}
	lim = rl.rlim_cur;
	if (lim == RLIM_INFINITY || lim > (rlim_t)1 << 30)
		lim = (rlim_t)1 << 30;
	w->max_held = lim - (lim / 2 < FD_RESERVE ? lim / 2 : FD_RESERVE);
}

struct walk *
walk_open(const char *root, const struct walk_opts *opts, struct errbuf *eb)
{
	struct walk *w;
	struct stat st;
	int fd;

	fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		if ((errno == ELOOP || errno == ENOTDIR) &&
		    lstat(root, &st) == 0 && S_ISLNK(st.st_mode))
			errbuf_set(eb, ERR_IO, "'%s' is a symbolic link: "
			    "name the real folder", root);
		else
			errbuf_setsys(eb, ERR_IO, "open '%s'", root);
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->root_fd = fd;
	w->root = xstrdup(root);
	if (opts != NULL)
		w->opts = *opts;
	raise_nofile(w);
	return w;
}

/* Put the directory being read into the table of held ones. */
static int
walk_hold(struct walk *w, struct scan *sc)
{
	struct walk_dir *d;

	if (w->ndirs >= w->max_held) {
		log_warn("'%s': more than %zu folders hold files; taking "
		    "the files of the first %zu, the rest stay for the next "
		    "run (raise the open files limit)", w->root, w->max_held,
		    w->ndirs);
		w->stop = 1;
		return -1;
	}
	if (w->ndirs == w->adirs) {
		w->adirs = w->adirs ? 2 * w->adirs : 64;
		w->dirs = xrealloc(w->dirs, w->adirs * sizeof(*w->dirs));
	}
	d = &w->dirs[w->ndirs];
	d->fd = sc->fd;
	d->bucket = sc->bucket;
	d->prefix = arena_strndup(w, w->prefix.buf, w->prefix.len);
	d->prefix_len = w->prefix.len;
	sc->dir = w->ndirs++;
	return 0;
}

/* A regular file in the directory being read: keep it if its name can be. */
static void
walk_add_file(struct walk *w, struct scan *sc, const char *name,
    const struct stat *st)
{
	size_t nlen = strlen(name), klen;
	struct walk_entry *e;
	char *key;

	klen = w->prefix.len + (w->prefix.len > 0) + nlen;
	if (!w->opts.raw_names && !name_is_utf8(name, nlen)) {
		walk_say(w, LOG_LVL_WARN, sc->bucket, name, nlen,
		    "name is not UTF-8, left in place");
		w->skipped++;
		return;
	}
	if (klen > S3_KEY_MAX) {
		walk_say(w, LOG_LVL_WARN, sc->bucket, name, nlen,
		    "object key would be %zu bytes, over S3's %d; left in "
		    "place", klen, S3_KEY_MAX);
		w->skipped++;
		return;
	}
	if (sc->dir == NO_DIR && walk_hold(w, sc) == -1)
		return;
	if (w->nents == w->aents) {
		w->aents = w->aents ? 2 * w->aents : 1024;
		w->ents = xrealloc(w->ents, w->aents * sizeof(*w->ents));
	}
	key = arena_alloc(w, klen + 1);
	memcpy(key, w->prefix.buf, w->prefix.len);
	if (w->prefix.len > 0)
		key[w->prefix.len] = '/';
	memcpy(key + klen - nlen, name, nlen + 1);
	e = &w->ents[w->nents++];
	e->bucket = sc->bucket;
	e->key = key;
	e->name = key + klen - nlen;
	e->key_len = klen;
	e->dir = sc->dir;
	e->st = *st;
}

static const char *
type_name(mode_t m)
{
	if (S_ISLNK(m))
		return "symbolic link";
	if (S_ISFIFO(m))
		return "FIFO";
	if (S_ISSOCK(m))
		return "socket";
	if (S_ISCHR(m) || S_ISBLK(m))
		return "device";
	return "special file";
}

static mode_t
dtype_mode(unsigned char t)
{
	switch (t) {
	case DT_DIR:
		return S_IFDIR;
	case DT_REG:
		return S_IFREG;
	case DT_LNK:
		return S_IFLNK;
	case DT_FIFO:
		return S_IFIFO;
	case DT_SOCK:
		return S_IFSOCK;
	case DT_CHR:
		return S_IFCHR;
	case DT_BLK:
		return S_IFBLK;
	default:
		return 0;
	}
}

/*
 * One entry of the directory being read: a file is kept (below a bucket
 * folder) or named in a warning; a directory goes to subs for later.
 * Returns -1 only for errors that end the walk.
 */
static int
walk_entry_seen(struct walk *w, struct scan *sc, struct dirent *de,
    struct namelist *subs, struct errbuf *eb)
{
	struct stat st;
	mode_t m = dtype_mode(de->d_type);

	if (m == 0 || m == S_IFREG) {
		if (fstatat(sc->fd, de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1) {
			if (errno == ENOENT)
				return 0;	/* gone since readdir */
			if (fatal_errno(errno)) {
				errbuf_setsys(eb, ERR_IO, "stat in '%s'",
				    w->root);
				return -1;
			}
			walk_say(w, LOG_LVL_WARN, sc->bucket, de->d_name,
			    strlen(de->d_name), "stat: %s", strerror(errno));
			w->skipped++;
			return 0;
		}
		m = st.st_mode & S_IFMT;
	}
	if (S_ISDIR(m)) {
		namelist_add(subs, de->d_name);
		return 0;
	}
	if (S_ISREG(m) && sc->bucket != NULL) {
		walk_add_file(w, sc, de->d_name, &st);
		return 0;
	}
	walk_say(w, LOG_LVL_WARN, sc->bucket, de->d_name, strlen(de->d_name),
	    "%s, left in place", sc->bucket == NULL ? "not in a bucket folder"
	    : type_name(m));
	w->skipped++;
	return 0;
}

/*
 * Read the directory open at sc->fd: keep its files (sorted by name) and
 * list its subdirectories. A read error is a warning: what was read counts.
 */
static int
walk_read_dir(struct walk *w, struct scan *sc, struct namelist *subs,
    struct errbuf *eb)
{
	struct dirent *de;
	size_t first = w->nents;
	DIR *dp;
	int fd, rerr = 0, rc = -1;

	if ((fd = fcntl(sc->fd, F_DUPFD_CLOEXEC, 0)) == -1 ||
	    (dp = fdopendir(fd)) == NULL) {
		errbuf_setsys(eb, ERR_IO, "read folder in '%s'", w->root);
		if (fd != -1)
			close(fd);
		return -1;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(dp)) == NULL) {
			rerr = errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (walk_entry_seen(w, sc, de, subs, eb) == -1)
			goto out;
		if (w->stop)
			break;
	}
	if (rerr != 0)
		walk_say(w, LOG_LVL_WARN, sc->bucket, NULL, 0,
		    "read folder: %s", strerror(rerr));
	qsort(w->ents + first, w->nents - first, sizeof(*w->ents), cmp_entry);
	rc = 0;
 out:
	closedir(dp);
	return rc;
}

/*
 * Regular files in the folder name under dirfd and below it (not deeper
 * than COUNT_DEPTH levels); *more is set when the count is incomplete.
 */
static size_t
count_files(int dirfd, const char *name, int depth, int *more)
{
	struct dirent *de;
	struct stat st;
	size_t n = 0;
	mode_t m;
	DIR *dp;
	int fd;

	if (depth > COUNT_DEPTH) {
		*more = 1;
		return 0;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 || (dp = fdopendir(fd)) == NULL) {
		*more = 1;
		if (fd != -1)
			close(fd);
		return 0;
	}
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((m = dtype_mode(de->d_type)) == 0) {
			if (fstatat(fd, de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) == -1)
				continue;
			m = st.st_mode & S_IFMT;
		}
		if (S_ISREG(m))
			n++;
		else if (S_ISDIR(m))
			n += count_files(fd, de->d_name, depth + 1, more);
	}
	closedir(dp);
	return n;
}

/* A folder that is left whole: one line for it, with what it holds. */
static void
walk_skip_dir(struct walk *w, struct scan *sc, const char *name,
    const char *why)
{
	int more = 0;
	size_t n = count_files(sc->fd, name, 0, &more);

	walk_say(w, n > 0 || more ? LOG_LVL_WARN : LOG_LVL_INFO, sc->bucket,
	    name, strlen(name), "%s; %s%zu file%s left in place", why,
	    more ? "at least " : "", n, n == 1 ? "" : "s");
	w->skipped++;
}

/* Why the subdirectory name cannot be walked, or NULL when it can. */
static const char *
walk_dir_refused(struct walk *w, struct scan *sc, const char *name)
{
	size_t nlen = strlen(name), plen;

	if (sc->bucket == NULL)
		return bucket_name_valid(name) ? NULL :
		    "not a valid S3 bucket name";
	if (!name_is_utf8(name, nlen))
		return "folder name is not UTF-8";
	plen = w->prefix.len + (w->prefix.len > 0) + nlen;
	if (plen + 2 > S3_KEY_MAX || plen + w->opts.prefix_room > S3_KEY_MAX)
		return "folder path too long for S3 object keys";
	return NULL;
}

static int walk_tree(struct walk *w, int fd, const char *bucket,
    struct errbuf *eb);

/* Descend into the subdirectory name of the directory being read. */
static int
walk_descend(struct walk *w, struct scan *sc, const char *name,
    struct errbuf *eb)
{
	const char *why, *bucket = sc->bucket;
	size_t plen = w->prefix.len;
	int fd, rc;

	if ((why = walk_dir_refused(w, sc, name)) != NULL) {
		walk_skip_dir(w, sc, name, why);
		return 0;
	}
	fd = openat(sc->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1) {
		if (fatal_errno(errno)) {
			errbuf_setsys(eb, ERR_IO, "open folder in '%s'",
			    w->root);
			return -1;
		}
		/* ENOENT, ENOTDIR, ELOOP: gone or swapped since readdir. */
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP) {
			walk_say(w, LOG_LVL_WARN, sc->bucket, name,
			    strlen(name), "open: %s", strerror(errno));
			w->skipped++;
		}
		return 0;
	}
	if (bucket == NULL)
		bucket = arena_strndup(w, name, strlen(name));
	else {
		if (plen > 0)
			strbuf_addch(&w->prefix, '/');
		strbuf_adds(&w->prefix, name);
	}
	rc = walk_tree(w, fd, bucket, eb);
	w->prefix.len = plen;
	w->prefix.buf[plen] = '\0';
	return rc;
}

/*
 * Walk the directory open at fd (taken over: held in w->dirs or closed)
 * and its subdirectories. bucket is NULL for the root.
 */
static int
walk_tree(struct walk *w, int fd, const char *bucket, struct errbuf *eb)
{
	struct scan sc = { fd, bucket, NO_DIR };
	struct namelist subs;
	char **names = NULL;
	size_t i;
	int rc = -1;

	memset(&subs, 0, sizeof(subs));
	if (walk_read_dir(w, &sc, &subs, eb) == -1)
		goto out;
	names = namelist_sorted(&subs);
	for (i = 0; i < subs.n && !w->stop; i++)
		if (walk_descend(w, &sc, names[i], eb) == -1)
			goto out;
	rc = 0;
 out:
	free(names);
	namelist_release(&subs);
	if (sc.dir == NO_DIR && fd != w->root_fd)
		close(fd);
	return rc;
}

int
walk_run(struct walk *w, struct walk_result *out, struct errbuf *eb)
{
	if (w->ran) {
		errbuf_set(eb, ERR_INTERNAL, "walk of '%s' run twice", w->root);
		return -1;
	}
	w->ran = 1;
	strbuf_init(&w->prefix, 256);
	if (walk_tree(w, w->root_fd, NULL, eb) == -1) {
		errbuf_prefix(eb, "walk");
		return -1;
	}
	out->entries = w->ents;
	out->n = w->nents;
	out->ndirs = w->ndirs;
	out->skipped = w->skipped;
	out->truncated = w->stop;
	return 0;
}

const struct walk_dir *
walk_dir_get(const struct walk *w, size_t i)
{
	return i < w->ndirs ? &w->dirs[i] : NULL;
}

const char *
walk_root(const struct walk *w)
{
	return w->root;
}

static int
timespec_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

int
walk_identity_same(const struct stat *snap, const struct stat *now)
{
	if (!S_ISREG(now->st_mode) || snap->st_dev != now->st_dev ||
	    snap->st_ino != now->st_ino || snap->st_size != now->st_size ||
	    !timespec_eq(&snap->st_mtim, &now->st_mtim))
		return 0;
	if (timespec_eq(&snap->st_ctim, &now->st_ctim))
		return 1;
	return snap->st_nlink > 1 && now->st_nlink < snap->st_nlink;
}

/* The entry's directory descriptor, or -1 with eb filled. */
static int
entry_dirfd(const struct walk *w, const struct walk_entry *e,
    struct errbuf *eb)
{
	if (e->dir >= w->ndirs) {
		errbuf_set(eb, ERR_INTERNAL, "walk entry with no folder");
		return -1;
	}
	return w->dirs[e->dir].fd;
}

/*
 * eb = "<what> '<bucket>/<key>'" (escaped), then ": <why>" when why is not
 * NULL, else ": strerror(err)".
 */
static void
entry_err(struct errbuf *eb, const struct walk_entry *e, const char *what,
    int err, const char *why)
{
	struct strbuf sb = STRBUF_INIT;

	show_name(&sb, e->bucket, strlen(e->bucket));
	strbuf_addch(&sb, '/');
	show_name(&sb, e->key, e->key_len);
	errno = err;
	if (why == NULL)
		errbuf_setsys(eb, ERR_IO, "%s '%s'", what, sb.buf);
	else {
		errbuf_set(eb, ERR_IO, "%s '%s': %s", what, sb.buf, why);
		if (eb != NULL)
			eb->sys_errno = err;
	}
	strbuf_release(&sb);
}

int
walk_openat(const struct walk *w, const struct walk_entry *e,
    struct stat *stp, struct errbuf *eb)
{
	struct stat st;
	int dfd, fd;

	if ((dfd = entry_dirfd(w, e, eb)) == -1)
		return -1;
	fd = openat(dfd, e->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_NOCTTY | O_CLOEXEC);
	if (fd == -1) {
		entry_err(eb, e, "open", errno, NULL);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		entry_err(eb, e, "stat", errno, NULL);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_dev != e->st.st_dev ||
	    st.st_ino != e->st.st_ino) {
		entry_err(eb, e, "open", ESTALE, "not the file the walk saw");
		close(fd);
		return -1;
	}
	if (stp != NULL)
		*stp = st;
	return fd;
}

int
walk_unlink_if_same(const struct walk *w, const struct walk_entry *e,
    struct errbuf *eb)
{
	struct stat st;
	int dfd;

	if ((dfd = entry_dirfd(w, e, eb)) == -1)
		return -1;
	if (fstatat(dfd, e->name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		if (errno == ENOENT)
			return 1;
		entry_err(eb, e, "stat", errno, NULL);
		return -1;
	}
	if (!walk_identity_same(&e->st, &st))
		return 1;
	if (unlinkat(dfd, e->name, 0) == -1) {
		if (errno == ENOENT)
			return 1;
		entry_err(eb, e, "unlink", errno, NULL);
		return -1;
	}
	return 0;
}

void
walk_free(struct walk *w)
{
	struct arena_chunk *c, *next;
	size_t i;

	if (w == NULL)
		return;
	for (i = 0; i < w->ndirs; i++)
		if (w->dirs[i].fd != w->root_fd)
			close(w->dirs[i].fd);
	close(w->root_fd);
	for (c = w->arena; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	strbuf_release(&w->prefix);
	free(w->dirs);
	free(w->ents);
	free(w->root);
	free(w);
}

/* Open a directory below dfd without following a symlink; -1 (errno). */
static int
open_subdir(int dfd, const char *name)
{
	return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
}

int
walk_unlink_path(const char *root, const char *bucket, const char *path,
    size_t path_len, const struct stat *snap, struct errbuf *eb)
{
	char *rel = xasprintf("%s/%.*s", bucket, (int)path_len, path);
	char *p = rel, *slash, *name;
	struct stat st;
	int dfd, next, rc = -1;

	if ((dfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1) {
		errbuf_setsys(eb, ERR_IO, "open '%s'", root);
		goto out;
	}
	while ((slash = strchr(p, '/')) != NULL) {
		*slash = '\0';
		if ((next = open_subdir(dfd, p)) == -1) {
			/* gone, or no longer a directory: nothing of ours */
			rc = 1;
			goto out;
		}
		close(dfd);
		dfd = next;
		p = slash + 1;
	}
	name = p;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !walk_identity_same(snap, &st)) {
		rc = 1;
		goto out;
	}
	if (unlinkat(dfd, name, 0) == -1) {
		rc = errno == ENOENT ? 1 : -1;
		if (rc == -1)
			errbuf_setsys(eb, ERR_IO, "unlink '%s/%s'", root, bucket);
		goto out;
	}
	rc = 0;
 out:
	if (dfd != -1)
		close(dfd);
	free(rel);
	return rc;
}
