/*
 * openfiles and filter: a file held open by a child process, scans that
 * cannot see everything (not root; /proc with hidepid), ignore globs and
 * the settle time by max(mtime, ctime).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "errbuf.h"
#include "filter.h"
#include "log.h"
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

/* Number of captured lines with this level letter that contain s. */
static int
logged_count(char level, const char *s)
{
	const char *p = logged.buf, *nl;
	int n = 0;

	while (p != NULL && *p != '\0') {
		nl = strchr(p, '\n');
		if (p[0] == level) {
			char *line = xstrndup(p, nl - p);

			n += strstr(line, s) != NULL;
			free(line);
		}
		p = nl + 1;
	}
	return n;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)f;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
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

/* Set a file's mtime to a day ago; its ctime stays now. */
static void
age_mtime(const char *rel)
{
	struct timespec t[2];
	char *p = path_of(rel);

	t[0].tv_sec = t[1].tv_sec = time(NULL) - 86400;
	t[0].tv_nsec = t[1].tv_nsec = 0;
	CHECK(utimensat(AT_FDCWD, p, t, 0) == 0);
	free(p);
}

/*
 * A child that holds rel open until the returned pipe is closed; -1 when
 * it could not be started.
 */
static int
hold_open(const char *rel, pid_t *pid)
{
	char *p = path_of(rel), c;
	int ready[2], done[2], fd;

	if (pipe(ready) == -1 || pipe(done) == -1)
		return -1;
	if ((*pid = fork()) == 0) {
		close(ready[0]);
		close(done[1]);
		fd = open(p, O_RDONLY);
		(void)!write(ready[1], fd == -1 ? "E" : "K", 1);
		(void)!read(done[0], &c, 1);	/* EOF: parent is done */
		_exit(0);
	}
	free(p);
	close(ready[1]);
	close(done[0]);
	if (*pid == -1 || read(ready[0], &c, 1) != 1 || c != 'K') {
		close(ready[0]);
		close(done[1]);
		return -1;
	}
	close(ready[0]);
	return done[1];
}

static void
stat_of(const char *rel, struct stat *st)
{
	char *p = path_of(rel);

	CHECK(stat(p, st) == 0);
	free(p);
}

/*
 * A child holds "held" open, we hold "mine" (our own: not counted), nobody
 * holds "idle". Returns the set's completeness, -1 when it failed.
 */
static int
check_openfiles(void)
{
	struct openfiles *of;
	struct errbuf eb;
	struct stat held, mine, idle;
	pid_t pid;
	int done, fd, status, complete = -1;
	char *p;

	put("held", "held");
	put("mine", "mine");
	put("idle", "idle");
	stat_of("held", &held);
	stat_of("mine", &mine);
	stat_of("idle", &idle);
	done = hold_open("held", &pid);
	CHECK(done != -1);
	p = path_of("mine");
	fd = open(p, O_RDONLY);
	free(p);
	CHECK((of = openfiles_scan(&eb)) != NULL);
	if (of != NULL) {
		CHECK(openfiles_contains(of, held.st_dev, held.st_ino));
		CHECK(!openfiles_contains(of, mine.st_dev, mine.st_ino));
		CHECK(!openfiles_contains(of, idle.st_dev, idle.st_ino));
		CHECK(!openfiles_contains(of, held.st_dev + 1, held.st_ino));
		CHECK(openfiles_count(of) > 0 && openfiles_nprocs(of) > 0);
		complete = openfiles_complete(of);
		CHECK(complete == (openfiles_why(of)[0] == '\0'));
		if (!complete)
			printf("%s: open-file scan here is incomplete: %s\n",
			    __FILE__, openfiles_why(of));
	}
	openfiles_free(of);
	openfiles_free(NULL);
	if (done != -1) {
		close(done);
		waitpid(pid, &status, 0);
	}
	close(fd);
	return complete;
}

static void
test_openfiles(void)
{
	check_openfiles();
}

/*
 * fn(arg) in a child that is init of a new PID namespace with its own
 * /proc: only the test's processes are there, so as root the scan must
 * be complete. Returns fn's result, or 77 when namespaces are refused.
 */
static int
in_pid_namespace(int (*fn)(const char *), const char *arg)
{
	int status = -1;
	pid_t pid, init;

	fflush(NULL);
	if ((pid = fork()) == 0) {
		if (unshare(CLONE_NEWNS | CLONE_NEWPID) == -1 ||
		    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == -1)
			_exit(77);
		if ((init = fork()) == 0) {
			if (mount("proc", "/proc", "proc", MS_NOSUID |
			    MS_NODEV | MS_NOEXEC, NULL) == -1)
				_exit(77);
			_exit(fn(arg));
		}
		if (init == -1 || waitpid(init, &status, 0) != init ||
		    !WIFEXITED(status))
			_exit(70);
		_exit(WEXITSTATUS(status));
	}
	if (pid == -1 || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int
openfiles_child(const char *unused)
{
	(void)unused;
	return check_openfiles() == 1 && check_failed == 0 ? 0 : 1;
}

static void
test_openfiles_pidns(void)
{
	int rc;

	if (geteuid() != 0) {
		printf("%s: not root: PID namespace test skipped\n", __FILE__);
		return;
	}
	rc = in_pid_namespace(openfiles_child, NULL);
	if (rc == 77)
		printf("%s: no PID namespace here: complete-scan test "
		    "skipped\n", __FILE__);
	else
		CHECK(rc == 0);
}

/* Exit 0 when a scan by uid 65534 is incomplete, with a reason. */
static int
scan_as_nobody(const char *want)
{
	struct openfiles *of;
	struct errbuf eb;
	int ok;

	if (setgroups(0, NULL) == -1 || setresgid(65534, 65534, 65534) == -1 ||
	    setresuid(65534, 65534, 65534) == -1)
		return 2;
	if ((of = openfiles_scan(&eb)) == NULL)
		return 3;
	ok = !openfiles_complete(of) && strstr(openfiles_why(of), want);
	if (!ok)
		fprintf(stderr, "scan as nobody: complete %d, why '%s'\n",
		    openfiles_complete(of), openfiles_why(of));
	openfiles_free(of);
	return ok ? 0 : 1;
}

/* Exit 0 as above under a private /proc with hidepid=2; 77: cannot test. */
static int
scan_hidepid(void)
{
	if (unshare(CLONE_NEWNS) == -1 ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
	    "hidepid=2") == -1)
		return 77;
	return scan_as_nobody("hidepid");
}

static int
run_child(int (*fn)(const char *), const char *arg)
{
	int status = -1;
	pid_t pid;

	fflush(NULL);
	if ((pid = fork()) == 0)
		_exit(fn(arg));
	if (pid == -1 || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int
hidepid_child(const char *unused)
{
	(void)unused;
	return scan_hidepid();
}

static void
test_openfiles_incomplete(void)
{
	int rc;

	if (geteuid() != 0) {
		printf("%s: not root: scans as another user skipped\n",
		    __FILE__);
		return;
	}
	CHECK(run_child(scan_as_nobody, "cannot be read") == 0);
	rc = run_child(hidepid_child, NULL);
	if (rc == 77)
		printf("%s: cannot mount a private /proc here: hidepid test "
		    "skipped\n", __FILE__);
	else
		CHECK(rc == 0);
}

static void
test_globs(void)
{
	char *which = NULL;

	CHECK(filter_ignored(NULL, "x.filepart", &which));
	CHECK_STREQ(which, "*.filepart");
	free(which);
	CHECK(filter_ignored(NULL, ".x.filepart", NULL));
	CHECK(filter_ignored(NULL, ".pureftpd-upload.5f3a.bin", NULL));
	CHECK(filter_ignored(NULL, ".in.report.csv.", NULL));
	CHECK(!filter_ignored(NULL, ".in.report.csv", NULL));
	CHECK(filter_ignored(NULL, ".data.csv.Xy12Ab", NULL));
	CHECK(!filter_ignored(NULL, "data.csv.Xy12Ab", NULL));
	CHECK(!filter_ignored(NULL, ".hidden.txt", NULL));
	CHECK(!filter_ignored(NULL, "report.csv", NULL));
	CHECK(!filter_ignored("", "x.filepart", NULL));
	CHECK(!filter_ignored("::", "x.filepart", NULL));
	CHECK(filter_ignored("*.tmp::~*", "~lock", NULL));
	CHECK(filter_ignored("*.tmp::~*", "a.tmp", NULL));
	CHECK(!filter_ignored("*.tmp::~*", "a.txt", NULL));
}

/* A fresh walk of tmp/root. */
static struct walk *
walk_root_dir(struct walk_result *r)
{
	struct errbuf eb;
	struct walk *w;
	char *root = path_of("root");

	w = walk_open(root, NULL, &eb);
	free(root);
	if (w == NULL || walk_run(w, r, &eb) == -1) {
		fprintf(stderr, "walk: %s\n", eb.msg);
		walk_free(w);
		return NULL;
	}
	return w;
}

static int
has_key(const struct walk_result *r, const char *key)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->entries[i].key, key) == 0)
			return 1;
	return 0;
}

static void
test_filter(void)
{
	struct filter_opts fo = { -1, NULL, 0 };
	struct filter_stats fs;
	struct walk_result r;
	struct openfiles *of;
	struct errbuf eb;
	struct walk *w;
	pid_t pid;
	int done, status, complete;

	mkd("root");
	mkd("root/bkt");
	mkd("root/bkt/sub");
	put("root/bkt/a.txt", "a");
	put("root/bkt/.hidden.txt", "h");
	put("root/bkt/x.filepart", "x");
	put("root/bkt/.pureftpd-upload.1234", "p");
	put("root/bkt/.in.foo.", "i");
	put("root/bkt/.foo.AbC123", "r");
	put("root/bkt/open.txt", "o");
	put("root/bkt/sub/old-mtime.txt", "m");
	age_mtime("root/bkt/sub/old-mtime.txt");
	done = hold_open("root/bkt/open.txt", &pid);
	CHECK(done != -1);
	of = openfiles_scan(&eb);
	CHECK(of != NULL);
	complete = of != NULL && openfiles_complete(of);

	/* an hour from now: nothing is young; default settle 0 (or 60) */
	strbuf_reset(&logged);
	CHECK((w = walk_root_dir(&r)) != NULL && r.n == 8);
	fo.now = time(NULL) + 3600;
	filter_apply(&r, &fo, of, &fs);
	CHECK(fs.taken == 3 && r.n == 3 && fs.ignored == 4 && fs.open == 1 &&
	    fs.young == 0 && fs.scan_complete == complete &&
	    fs.settle == (complete ? 0 : 60));
	CHECK(has_key(&r, "a.txt") && has_key(&r, ".hidden.txt") &&
	    has_key(&r, "sub/old-mtime.txt"));
	CHECK(logged_count('I', "'bkt/x.filepart': name matches ignore "
	    "glob '*.filepart'") == 1);
	CHECK(logged_count('I', "'bkt/open.txt': open in some process") == 1);
	CHECK(logged_count('W', "") == !complete);
	walk_free(w);

	/* now, with a settle time: young by ctime though mtime is old */
	strbuf_reset(&logged);
	CHECK((w = walk_root_dir(&r)) != NULL);
	fo.now = time(NULL);
	fo.settle_seconds = 30;
	filter_apply(&r, &fo, of, &fs);
	CHECK(fs.taken == 0 && fs.young == 3 && fs.open == 1 &&
	    fs.ignored == 4 && fs.settle == (complete ? 30 : 60));
	CHECK(logged_count('I', "'bkt/sub/old-mtime.txt': changed 0 s ago, "
	    "within the settle time of") == 1);
	walk_free(w);

	/* empty ignore list: every name taken */
	CHECK((w = walk_root_dir(&r)) != NULL);
	fo.now = time(NULL) + 3600;
	fo.settle_seconds = -1;
	fo.ignore = "";
	filter_apply(&r, &fo, of, NULL);
	CHECK(r.n == 7 && !has_key(&r, "open.txt"));
	walk_free(w);

	/* no scan: one warning, settle at least 60 s */
	strbuf_reset(&logged);
	CHECK((w = walk_root_dir(&r)) != NULL);
	fo.now = time(NULL) + 59;
	fo.settle_seconds = 10;
	fo.ignore = NULL;
	filter_apply(&r, &fo, NULL, &fs);
	CHECK(fs.settle == 60 && fs.scan_complete == 0 && fs.young == 4 &&
	    fs.open == 0 && fs.taken == 0);
	CHECK(logged_count('W', "cannot read every process's open files "
	    "(not scanned); applying a settle time of at least 60 s") == 1);
	CHECK(logged_count('W', "") == 1);
	walk_free(w);

	/* a longer settle time than 60 s is kept */
	CHECK((w = walk_root_dir(&r)) != NULL);
	fo.now = time(NULL) + 100;
	fo.settle_seconds = 120;
	filter_apply(&r, &fo, NULL, &fs);
	CHECK(fs.settle == 120 && fs.young == 4);
	fo.settle_seconds = -1;
	walk_free(w);
	CHECK((w = walk_root_dir(&r)) != NULL);
	filter_apply(&r, &fo, NULL, &fs);
	CHECK(fs.settle == 60 && fs.taken == 4);
	walk_free(w);

	openfiles_free(of);
	if (done != -1) {
		close(done);
		waitpid(pid, &status, 0);
	}
}

int
main(void)
{
	const char *dir = getenv("TMPDIR");

	tmp = xasprintf("%s/test_filter.XXXXXX", dir ? dir : "/tmp");
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	log_set_handler(capture, NULL);
	test_openfiles();
	test_openfiles_pidns();
	test_openfiles_incomplete();
	test_globs();
	test_filter();
	nftw(tmp, rm_one, 64, FTW_DEPTH | FTW_PHYS);
	free(tmp);
	strbuf_release(&logged);
	CHECK_DONE();
}
