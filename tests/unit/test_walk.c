/*
 * walk and names: real trees in a mkdtemp directory: odd names, symlinks,
 * a FIFO, invalid names, over-long keys, identity checks before unlink,
 * a directory swapped for a symlink after the walk, the descriptor limit,
 * and a 100,000-file timing (printed, not asserted).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "errbuf.h"
#include "filter.h"
#include "log.h"
#include "names.h"
#include "openfiles.h"
#include "strbuf.h"
#include "walk.h"

static struct strbuf logged = STRBUF_INIT;
static char *tmp;

static void
capture(enum log_level level, const char *line, void *arg)
{
	(void)arg;
	strbuf_addf(&logged, "%c: %s\n", level == LOG_LVL_WARN ? 'W' :
	    level == LOG_LVL_INFO ? 'I' : 'O', line);
}

/* 1 when a captured line has this level letter and contains s. */
static int
logged_has(char level, const char *s)
{
	const char *p = logged.buf, *nl;

	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		if (p[0] == level) {
			char *line = xstrndup(p, nl - p);
			int hit = strstr(line, s) != NULL;

			free(line);
			if (hit)
				return 1;
		}
		p = nl + 1;
	}
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void
rm_rf(const char *path)
{
	nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS);
}

static char *
path_of(const char *rel)
{
	return xasprintf("%s/%s", tmp, rel);
}

static void
mkd(const char *rel)
{
	char *p = path_of(rel);

	if (mkdir(p, 0755) == -1 && errno != EEXIST)
		fprintf(stderr, "mkdir '%s': %s\n", p, strerror(errno));
	free(p);
}

static void
put(const char *rel, const char *data)
{
	char *p = path_of(rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd == -1 || write(fd, data, strlen(data)) != (ssize_t)strlen(data))
		fprintf(stderr, "write '%s': %s\n", p, strerror(errno));
	if (fd != -1)
		close(fd);
	free(p);
}

static int
exists(const char *rel)
{
	struct stat st;
	char *p = path_of(rel);
	int rc = lstat(p, &st) == 0;

	free(p);
	return rc;
}

static const struct walk_entry *
find(const struct walk_result *r, const char *bucket, const char *key)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->entries[i].bucket, bucket) == 0 &&
		    strcmp(r->entries[i].key, key) == 0)
			return &r->entries[i];
	return NULL;
}

static double
ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 +
	    (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void
test_names(void)
{
	struct strbuf sb = STRBUF_INIT;
	char b63[64], b64[65];

	CHECK(name_is_utf8("abc", 3));
	CHECK(name_is_utf8("", 0));
	CHECK(name_is_utf8("\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80", 9));
	CHECK(!name_is_utf8("a\xff", 2));
	CHECK(!name_is_utf8("\xc0\xaf", 2));		/* overlong '/' */
	CHECK(!name_is_utf8("\xe0\x80\xaf", 3));	/* overlong */
	CHECK(!name_is_utf8("\xed\xa0\x80", 3));	/* surrogate */
	CHECK(!name_is_utf8("\xf4\x90\x80\x80", 4));	/* > U+10FFFF */
	CHECK(!name_is_utf8("\xe2\x82", 2));		/* cut short */
	CHECK(!name_is_utf8("\xe2\x82x", 3));

	name_escape(&sb, "a\nb\\c\xff\xc3\xa9\x01 \x7f\xc2\x85", 13);
	CHECK_STREQ(sb.buf, "a\\nb\\\\c\\xff\xc3\xa9\\x01 \\x7f\\xc2\\x85");
	strbuf_reset(&sb);
	name_escape(&sb, "\xe2\x82", 2);
	CHECK_STREQ(sb.buf, "\\xe2\\x82");
	CHECK(name_is_utf8(sb.buf, sb.len));
	strbuf_release(&sb);

	CHECK(bucket_name_valid("abc"));
	CHECK(bucket_name_valid("my.bucket-1"));
	CHECK(bucket_name_valid("192.168.5"));
	CHECK(bucket_name_valid("1.2.3.4a"));
	CHECK(!bucket_name_valid("ab"));
	CHECK(!bucket_name_valid("Bad_Bucket"));
	CHECK(!bucket_name_valid("a..b"));
	CHECK(!bucket_name_valid("-abc"));
	CHECK(!bucket_name_valid("abc-"));
	CHECK(!bucket_name_valid(".abc"));
	CHECK(!bucket_name_valid("abc."));
	CHECK(!bucket_name_valid("192.168.5.4"));
	CHECK(!bucket_name_valid("lost+found"));
	CHECK(!bucket_name_valid("a b"));
	memset(b63, 'a', 63);
	b63[63] = '\0';
	memset(b64, 'a', 64);
	b64[64] = '\0';
	CHECK(bucket_name_valid(b63));
	CHECK(!bucket_name_valid(b64));
}

/* "long/<D1>/<D2>/<D3>", each D 250 bytes: a prefix of 757 bytes. */
static char *
long_dir(int levels)
{
	struct strbuf sb = STRBUF_INIT;
	char d[251];
	int i;

	strbuf_adds(&sb, "root/bucket-a/long");
	for (i = 0; i < levels; i++) {
		memset(d, 'a' + i, 250);
		d[250] = '\0';
		strbuf_addf(&sb, "/%s", d);
	}
	return strbuf_detach(&sb, NULL);
}

static void
make_tree(void)
{
	char *p, *q, *l3, *l4, *l5;
	char name20[21];

	mkd("root");
	mkd("outside");
	put("outside/secret.txt", "secret");
	mkd("root/bucket-a");
	put("root/bucket-a/empty.txt", "");
	put("root/bucket-a/a b+c=d&e?f#g%h~i.txt", "odd");
	put("root/bucket-a/\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac.txt", "utf8");
	put("root/bucket-a/x.filepart", "part");
	mkd("root/bucket-a/sub");
	mkd("root/bucket-a/sub/deeper");
	put("root/bucket-a/sub/deeper/file.bin", "0123456789");
	put("root/bucket-a/bad\xff.txt", "raw");
	mkd("root/bucket-a/bad\xfe" "dir");
	put("root/bucket-a/bad\xfe" "dir/inner.txt", "inner");
	p = path_of("outside/secret.txt");
	q = path_of("root/bucket-a/link-out");
	CHECK(symlink(p, q) == 0);
	free(p);
	free(q);
	p = path_of("outside");
	q = path_of("root/bucket-a/link-dir");
	CHECK(symlink(p, q) == 0);
	free(p);
	free(q);
	p = path_of("root/bucket-a/fifo");
	CHECK(mkfifo(p, 0644) == 0);
	free(p);

	mkd("root/bucket-a/long");
	for (int i = 1; i <= 5; i++) {
		l3 = long_dir(i);
		mkd(l3);
		free(l3);
	}
	l3 = long_dir(3);
	l4 = long_dir(4);
	l5 = long_dir(5);
	p = xasprintf("%s/x", l3);
	put(p, "x");
	free(p);
	p = xasprintf("%s/y", l4);
	put(p, "y");
	free(p);
	memset(name20, 'z', 20);
	name20[20] = '\0';
	p = xasprintf("%s/%s", l4, name20);
	put(p, "z");
	free(p);
	p = xasprintf("%s/f", l5);
	put(p, "f");
	free(p);
	free(l3);
	free(l4);
	free(l5);

	mkd("root/Bad_Bucket");
	put("root/Bad_Bucket/f.txt", "bad bucket");
	put("root/toplevel.txt", "top");
	mkd("root/lost+found");
	mkd("root/empty-bucket");
}

static void
test_walk_tree(void)
{
	struct walk_opts raw = { 1, 41 };
	struct walk_result r;
	struct errbuf eb;
	const struct walk_entry *e;
	const struct walk_dir *d;
	struct walk *w;
	char *root = path_of("root"), *l3 = long_dir(3), *l4 = long_dir(4);
	char *k3 = xasprintf("%s/x", l3 + strlen("root/bucket-a/"));
	char *k4 = xasprintf("%s/y", l4 + strlen("root/bucket-a/"));

	make_tree();
	alarm(60);	/* a walk that opened the FIFO would hang here */
	strbuf_reset(&logged);
	CHECK((w = walk_open(root, NULL, &eb)) != NULL);
	CHECK(walk_run(w, &r, &eb) == 0);
	CHECK(walk_run(w, &r, &eb) == -1 && eb.kind == ERR_INTERNAL);
	CHECK(r.n == 7);
	CHECK(!r.truncated);
	CHECK(r.n > 0 &&
	    strcmp(r.entries[0].key, "a b+c=d&e?f#g%h~i.txt") == 0);
	CHECK(r.n > 3 && strcmp(r.entries[3].key,
	    "\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac.txt") == 0);
	CHECK((e = find(&r, "bucket-a", "empty.txt")) != NULL &&
	    e->st.st_size == 0 && S_ISREG(e->st.st_mode));
	CHECK(find(&r, "bucket-a", "x.filepart") != NULL);
	CHECK((e = find(&r, "bucket-a", "sub/deeper/file.bin")) != NULL &&
	    e->st.st_size == 10 && strcmp(e->name, "file.bin") == 0 &&
	    (d = walk_dir_get(w, e->dir)) != NULL &&
	    strcmp(d->prefix, "sub/deeper") == 0 && d->prefix_len == 10 &&
	    strcmp(d->bucket, "bucket-a") == 0 && d->fd >= 0);
	CHECK((e = find(&r, "bucket-a", "empty.txt")) != NULL &&
	    (d = walk_dir_get(w, e->dir)) != NULL &&
	    strcmp(d->prefix, "") == 0);
	CHECK((e = find(&r, "bucket-a", k3)) != NULL && e->key_len == 759);
	CHECK((e = find(&r, "bucket-a", k4)) != NULL && e->key_len == 1010);
	CHECK(r.ndirs == 4);
	CHECK(walk_dir_get(w, r.ndirs) == NULL);
	for (size_t i = 0; i < r.n; i++)
		CHECK(strstr(r.entries[i].key, "secret") == NULL &&
		    strcmp(r.entries[i].bucket, "bucket-a") == 0);
	CHECK(logged_has('W', "'Bad_Bucket': not a valid S3 bucket name; "
	    "1 file left in place"));
	CHECK(logged_has('I', "'lost+found': not a valid S3 bucket name; "
	    "0 files left"));
	CHECK(logged_has('W', "'toplevel.txt': not in a bucket folder"));
	CHECK(logged_has('W', "'bucket-a/bad\\xff.txt': name is not UTF-8"));
	CHECK(logged_has('W', "'bucket-a/bad\\xfedir': folder name is not "
	    "UTF-8; 1 file left"));
	CHECK(logged_has('W', "'bucket-a/link-out': symbolic link, left"));
	CHECK(logged_has('W', "'bucket-a/link-dir': symbolic link, left"));
	CHECK(logged_has('W', "'bucket-a/fifo': FIFO, left in place"));
	CHECK(logged_has('W', "zzzzzzzzzzzzzzzzzzzz': object key would be "
	    "1029 bytes"));
	CHECK(logged_has('W', "folder path too long for S3 object keys; "
	    "1 file left"));
	CHECK(!logged_has('W', "empty-bucket"));
	CHECK(r.skipped == 10);
	walk_free(w);

	/* s3-batch: raw file names taken, room for "/<uuid>.tar" kept */
	strbuf_reset(&logged);
	CHECK((w = walk_open(root, &raw, &eb)) != NULL);
	CHECK(walk_run(w, &r, &eb) == 0);
	CHECK(find(&r, "bucket-a", "bad\xff.txt") != NULL);
	CHECK(find(&r, "bucket-a", k3) != NULL);
	CHECK(find(&r, "bucket-a", k4) == NULL);
	CHECK(logged_has('W', "'bucket-a/bad\\xfedir': folder name is not "
	    "UTF-8"));
	CHECK(r.n == 7);
	walk_free(w);
	alarm(0);

	CHECK(walk_open(l3, NULL, &eb) == NULL && eb.kind == ERR_IO);
	free(root);
	root = path_of("root-link");
	free(l3);
	l3 = path_of("root");
	CHECK(symlink(l3, root) == 0);
	CHECK(walk_open(root, NULL, &eb) == NULL &&
	    strstr(eb.msg, "symbolic link") != NULL);
	unlink(root);
	walk_free(NULL);
	free(root);
	free(l3);
	free(l4);
	free(k3);
	free(k4);
	rm_rf(tmp);
	mkdir(tmp, 0700);
}

static void
pause_for_ctime(void)
{
	struct timespec ts = { 0, 30 * 1000 * 1000 };

	nanosleep(&ts, NULL);
}

static void
test_identity(void)
{
	struct walk_result r;
	struct errbuf eb;
	struct stat st;
	struct timespec times[2];
	const struct walk_entry *e;
	struct walk *w;
	char *root = path_of("root"), *p, *q, buf[32];
	int fd;
	ssize_t n;

	mkd("root");
	mkd("root/bkt");
	mkd("root/bkt/d");
	mkd("outside");
	put("root/bkt/keep", "keep");
	put("root/bkt/rewrite", "aaaa");
	put("root/bkt/gone", "gone");
	put("root/bkt/fifo-swap", "fifo");
	put("root/bkt/link-swap", "link");
	put("root/bkt/h1", "hard");
	put("root/bkt/d/f", "inside");
	put("outside/f", "OUTSIDE");
	p = path_of("root/bkt/h1");
	q = path_of("root/bkt/h2");
	CHECK(link(p, q) == 0);
	free(p);
	free(q);

	CHECK((w = walk_open(root, NULL, &eb)) != NULL);
	CHECK(walk_run(w, &r, &eb) == 0);
	CHECK(r.n == 8);
	pause_for_ctime();

	/* same size, mtime put back: only ctime tells */
	p = path_of("root/bkt/rewrite");
	CHECK(stat(p, &st) == 0);
	put("root/bkt/rewrite", "bbbb");
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	CHECK(utimensat(AT_FDCWD, p, times, 0) == 0);
	free(p);
	CHECK((e = find(&r, "bkt", "rewrite")) != NULL &&
	    walk_unlink_if_same(w, e, &eb) == 1);
	CHECK(exists("root/bkt/rewrite"));

	CHECK((e = find(&r, "bkt", "keep")) != NULL);
	CHECK((fd = walk_openat(w, e, &st, &eb)) >= 0);
	n = read(fd, buf, sizeof(buf));
	CHECK(n == 4 && memcmp(buf, "keep", 4) == 0);
	CHECK(walk_identity_same(&e->st, &st));
	close(fd);
	CHECK(walk_unlink_if_same(w, e, &eb) == 0);
	CHECK(!exists("root/bkt/keep"));
	CHECK(walk_unlink_if_same(w, e, &eb) == 1);
	CHECK(walk_openat(w, e, NULL, &eb) == -1 && eb.sys_errno == ENOENT);

	p = path_of("root/bkt/gone");
	unlink(p);
	free(p);
	CHECK((e = find(&r, "bkt", "gone")) != NULL &&
	    walk_unlink_if_same(w, e, &eb) == 1);

	/* a name swapped for a FIFO is not waited on */
	p = path_of("root/bkt/fifo-swap");
	unlink(p);
	CHECK(mkfifo(p, 0644) == 0);
	free(p);
	alarm(30);
	CHECK((e = find(&r, "bkt", "fifo-swap")) != NULL &&
	    walk_openat(w, e, NULL, &eb) == -1 && eb.sys_errno == ESTALE);
	alarm(0);
	CHECK(walk_unlink_if_same(w, e, &eb) == 1);
	CHECK(exists("root/bkt/fifo-swap"));

	/* a name swapped for a symlink is not followed */
	p = path_of("root/bkt/link-swap");
	q = path_of("outside/f");
	unlink(p);
	CHECK(symlink(q, p) == 0);
	free(p);
	free(q);
	CHECK((e = find(&r, "bkt", "link-swap")) != NULL &&
	    walk_openat(w, e, NULL, &eb) == -1 && eb.sys_errno == ELOOP);
	CHECK(walk_unlink_if_same(w, e, &eb) == 1);
	CHECK(exists("root/bkt/link-swap"));

	/* both names of a hard link go, though the first changes ctime */
	CHECK((e = find(&r, "bkt", "h1")) != NULL && e->st.st_nlink == 2 &&
	    walk_unlink_if_same(w, e, &eb) == 0);
	CHECK((e = find(&r, "bkt", "h2")) != NULL &&
	    walk_unlink_if_same(w, e, &eb) == 0);
	CHECK(!exists("root/bkt/h1") && !exists("root/bkt/h2"));

	/* the folder swapped for a symlink to outside after the walk */
	p = path_of("root/bkt/d");
	q = path_of("root/bkt/d.old");
	CHECK(rename(p, q) == 0);
	free(q);
	q = path_of("outside");
	CHECK(symlink(q, p) == 0);
	free(p);
	free(q);
	CHECK((e = find(&r, "bkt", "d/f")) != NULL);
	CHECK((fd = walk_openat(w, e, NULL, &eb)) >= 0);
	n = read(fd, buf, sizeof(buf));
	CHECK(n == 6 && memcmp(buf, "inside", 6) == 0);
	close(fd);
	CHECK(walk_unlink_if_same(w, e, &eb) == 0);
	CHECK(exists("outside/f"));
	CHECK(!exists("root/bkt/d.old/f"));

	walk_free(w);
	free(root);
	rm_rf(tmp);
	mkdir(tmp, 0700);
}

/*
 * In a child (the limit cannot be raised back): 40 folders, 64 fds.
 * Returns 0 when right, 77 when the limit cannot be set, else 1.
 */
static int
child_fd_limit(void)
{
	struct rlimit rl = { 64, 64 };
	struct walk_result r;
	struct errbuf eb;
	struct walk *w = NULL;
	char *root = path_of("root"), rel[64];
	int rc = 77;

	mkd("root");
	mkd("root/bkt");
	for (int i = 0; i < 40; i++) {
		snprintf(rel, sizeof(rel), "root/bkt/d%02d", i);
		mkd(rel);
		snprintf(rel, sizeof(rel), "root/bkt/d%02d/f", i);
		put(rel, "f");
	}
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		goto out;
	rc = 1;
	if ((w = walk_open(root, NULL, &eb)) == NULL ||
	    walk_run(w, &r, &eb) == -1) {
		fprintf(stderr, "fd limit: %s\n", eb.msg);
		goto out;
	}
	/* 64 - min(1024, 32) = 32 folders held */
	if (r.truncated && r.ndirs == 32 && r.n == 32 &&
	    logged_has('W', "more than 32 folders hold files"))
		rc = 0;
	else
		fprintf(stderr, "fd limit: truncated %d, %zu folders, %zu "
		    "files\n", r.truncated, r.ndirs, r.n);
 out:
	walk_free(w);
	free(root);
	free(tmp);
	strbuf_release(&logged);
	return rc;
}

static void
test_fd_limit(void)
{
	int status = -1;
	pid_t pid;

	strbuf_reset(&logged);
	fflush(NULL);
	if ((pid = fork()) == 0)
		exit(child_fd_limit());
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid &&
	    WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		printf("%s: cannot lower the open files limit: test "
		    "skipped\n", __FILE__);
	else
		CHECK(WEXITSTATUS(status) == 0);
	rm_rf(tmp);
	mkdir(tmp, 0700);
}

static void
bench(void)
{
	struct filter_opts fo = { -1, NULL, 0 };
	struct filter_stats fs;
	struct walk_result r;
	struct timespec t0;
	struct errbuf eb;
	struct openfiles *of;
	struct walk *w;
	const char *env = getenv("S3B_BENCH_FILES");
	long nfiles = env != NULL ? strtol(env, NULL, 10) :
	    getenv("VALGRIND") != NULL ? 10000 : 100000;
	long per_dir = 1000, i;
	char *root, *saved = tmp, rel[64];
	double ms_walk, ms_scan, ms_filter;
	struct stat st;

	if (nfiles <= 0)
		return;
	/* tmpfs when there is one: creating 100,000 files on disk is slow */
	tmp = xstrdup(stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm/test_walk.XXXXXX" :
	    "/tmp/test_walk.XXXXXX");
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		free(tmp);
		tmp = saved;
		return;
	}
	root = path_of("root");
	mkd("root");
	mkd("root/bench");
	for (i = 0; i < nfiles; i++) {
		if (i % per_dir == 0) {
			snprintf(rel, sizeof(rel), "root/bench/d%04ld",
			    i / per_dir);
			mkd(rel);
		}
		snprintf(rel, sizeof(rel), "root/bench/d%04ld/file-%06ld.log",
		    i / per_dir, i);
		put(rel, "");
	}
	log_set_handler(NULL, NULL);
	printf("bench: %ld files made under %s\n", nfiles, tmp);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	w = walk_open(root, NULL, &eb);
	CHECK(w != NULL && walk_run(w, &r, &eb) == 0);
	ms_walk = ms_since(&t0);
	CHECK(w != NULL && r.n == (size_t)nfiles);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	of = openfiles_scan(&eb);
	ms_scan = ms_since(&t0);
	CHECK(of != NULL);
	fo.now = time(NULL) + 3600;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (w != NULL && of != NULL)
		filter_apply(&r, &fo, of, &fs);
	ms_filter = ms_since(&t0);
	CHECK(w != NULL && of != NULL && fs.taken == (size_t)nfiles);
	printf("bench: walk of %ld files in %ld folders: %.1f ms; open-file "
	    "scan (%zu processes, %zu fds): %.1f ms; filter: %.1f ms\n",
	    nfiles, (nfiles + per_dir - 1) / per_dir, ms_walk,
	    of ? openfiles_nprocs(of) : 0, of ? openfiles_nfds(of) : 0,
	    ms_scan, ms_filter);
	openfiles_free(of);
	walk_free(w);
	free(root);
	rm_rf(tmp);
	free(tmp);
	tmp = saved;
	log_set_handler(capture, NULL);
}

int
main(void)
{
	const char *dir = getenv("TMPDIR");

	tmp = xasprintf("%s/test_walk.XXXXXX", dir ? dir : "/tmp");
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	log_set_handler(capture, NULL);
	test_names();
	test_walk_tree();
	test_identity();
	test_fd_limit();
	bench();
	rm_rf(tmp);
	free(tmp);
	strbuf_release(&logged);
	CHECK_DONE();
}
