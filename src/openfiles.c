#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"
#include "openfiles.h"
#include "strbuf.h"

/* An open-addressing hash set of (dev, ino); used[i] == 0: a free slot. */
struct openfiles {
	dev_t		*dev;
	ino_t		*ino;
	unsigned char	*used;
	size_t		 cap, n;	/* cap: a power of two */
	size_t		 nprocs, nfds;
	size_t		 denied;	/* processes whose table was refused */
	size_t		 privileged;	/* root processes root cannot read */
	long		 denied_pid;	/* the first of them */
	int		 complete;
	char		 why[160];
};

static size_t
of_hash(dev_t dev, ino_t ino)
{
	uint64_t x = (uint64_t)ino ^ ((uint64_t)dev * 0x9e3779b97f4a7c15ULL);

	/* splitmix64's finaliser: every input bit reaches every output bit */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return (size_t)x;
}

static void of_grow(struct openfiles *of);

static void
of_add(struct openfiles *of, dev_t dev, ino_t ino)
{
	size_t i;

	if (2 * (of->n + 1) > of->cap)
		of_grow(of);
	for (i = of_hash(dev, ino) & (of->cap - 1); of->used[i];
	    i = (i + 1) & (of->cap - 1))
		if (of->dev[i] == dev && of->ino[i] == ino)
			return;
	of->used[i] = 1;
	of->dev[i] = dev;
	of->ino[i] = ino;
	of->n++;
}

static void
of_grow(struct openfiles *of)
{
	struct openfiles old = *of;
	size_t i;

	of->cap = old.cap ? 2 * old.cap : 1024;
	of->dev = xcalloc(of->cap, sizeof(*of->dev));
	of->ino = xcalloc(of->cap, sizeof(*of->ino));
	of->used = xcalloc(of->cap, 1);
	of->n = 0;
	for (i = 0; i < old.cap; i++)
		if (old.used[i])
			of_add(of, old.dev[i], old.ino[i]);
	free(old.dev);
	free(old.ino);
	free(old.used);
}

int
openfiles_contains(const struct openfiles *of, dev_t dev, ino_t ino)
{
	size_t i;

	if (of->cap == 0)
		return 0;
	for (i = of_hash(dev, ino) & (of->cap - 1); of->used[i];
	    i = (i + 1) & (of->cap - 1))
		if (of->dev[i] == dev && of->ino[i] == ino)
			return 1;
	return 0;
}

static void
of_incomplete(struct openfiles *of, const char *why)
{
	if (of->complete)
		snprintf(of->why, sizeof(of->why), "%s", why);
	of->complete = 0;
}

/*
 * A process whose descriptors even root cannot read holds capabilities
 * this run lacks (a sandbox's or container's supervisor): it is not an
 * ingestion client, which writes as an ordinary user, so when we are root
 * an unreadable process of root's is named once and does not make the scan
 * incomplete. Any other unreadable process does.
 */
static void
of_denied(struct openfiles *of, int procfd, const char *pid)
{
	struct stat st;

	if (geteuid() == 0 && fstatat(procfd, pid, &st, 0) == 0 &&
	    st.st_uid == 0) {
		if (of->privileged++ == 0)
			log_info("the open files of pid %s (more privileged "
			    "than this run) cannot be read; passed over", pid);
		return;
	}
	if (of->denied++ == 0)
		of->denied_pid = strtol(pid, NULL, 10);
}

static int
fatal_errno(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOMEM;
}

/*
 * Add the regular files open in the descriptor table /proc/<name>/fd.
 * Returns -1 only when out of descriptors (errno set).
 */
static int
of_scan_pid(struct openfiles *of, int procfd, const char *name)
{
	char path[NAME_MAX + 8];
	struct statx stx;
	struct dirent *de;
	DIR *dp;
	int fd, err, denied = 0;

	snprintf(path, sizeof(path), "%s/fd", name);
	if ((fd = openat(procfd, path, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (dp = fdopendir(fd)) == NULL) {
		err = errno;
		if (fd != -1)
			close(fd);
		errno = err;
		if (fatal_errno(err))
			return -1;
		if (err == EACCES || err == EPERM)
			of_denied(of, procfd, name);
		else if (err != ENOENT && err != ESRCH)
			of_incomplete(of, "a /proc/PID/fd cannot be read");
		return 0;	/* else the process has ended */
	}
	of->nprocs++;
	while ((de = readdir(dp)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		of->nfds++;
		/* follows the link to the open file itself */
		if (statx(fd, de->d_name, AT_STATX_DONT_SYNC,
		    STATX_TYPE | STATX_INO, &stx) == -1) {
			if (errno == EACCES || errno == EPERM)
				denied = 1;
			continue;	/* ENOENT: closed since readdir */
		}
		if (S_ISREG(stx.stx_mode))
			of_add(of, makedev(stx.stx_dev_major,
			    stx.stx_dev_minor), (ino_t)stx.stx_ino);
	}
	closedir(dp);
	if (denied)
		of_denied(of, procfd, name);
	return 0;
}

static int
is_pid(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* Read every /proc/<pid>/fd but ours. */
static int
of_scan_proc(struct openfiles *of, int procfd, struct errbuf *eb)
{
	char self[32];
	struct dirent *de;
	DIR *dp;
	int fd;

	snprintf(self, sizeof(self), "%ld", (long)getpid());
	if ((fd = fcntl(procfd, F_DUPFD_CLOEXEC, 0)) == -1 ||
	    (dp = fdopendir(fd)) == NULL) {
		errbuf_setsys(eb, ERR_IO, "read '/proc'");
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(dp)) != NULL) {
		if (!is_pid(de->d_name) || strcmp(de->d_name, self) == 0)
			continue;
		if (of_scan_pid(of, procfd, de->d_name) == -1) {
			errbuf_setsys(eb, ERR_IO, "read '/proc/%s/fd'",
			    de->d_name);
			closedir(dp);
			return -1;
		}
	}
	closedir(dp);
	return 0;
}

struct openfiles *
openfiles_scan(struct errbuf *eb)
{
	struct openfiles *of = xcalloc(1, sizeof(*of));
	struct stat st;
	char why[sizeof(of->why)];
	int procfd;

	of->complete = 1;
	procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procfd == -1) {
		snprintf(why, sizeof(why), "cannot open /proc: %s",
		    strerror(errno));
		of_incomplete(of, why);
		return of;
	}
	/* hidepid=2 hides others' processes instead of refusing them */
	if (fstatat(procfd, "1", &st, 0) == -1 && errno == ENOENT)
		of_incomplete(of, "/proc hides other users' processes "
		    "(hidepid)");
	if (of_scan_proc(of, procfd, eb) == -1) {
		close(procfd);
		openfiles_free(of);
		return NULL;
	}
	close(procfd);
	if (of->denied > 0) {
		snprintf(why, sizeof(why), "the open files of %zu "
		    "process%s (pid %ld%s) cannot be read%s", of->denied,
		    of->denied == 1 ? "" : "es", of->denied_pid,
		    of->denied == 1 ? "" : ", ...",
		    geteuid() != 0 ? ": not running as root" : "");
		of_incomplete(of, why);
	}
	return of;
}

int
openfiles_complete(const struct openfiles *of)
{
	return of->complete;
}

const char *
openfiles_why(const struct openfiles *of)
{
	return of->complete ? "" : of->why;
}

size_t
openfiles_count(const struct openfiles *of)
{
	return of->n;
}

size_t
openfiles_nprocs(const struct openfiles *of)
{
	return of->nprocs;
}

size_t
openfiles_nfds(const struct openfiles *of)
{
	return of->nfds;
}

void
openfiles_free(struct openfiles *of)
{
	if (of == NULL)
		return;
	free(of->dev);
	free(of->ino);
	free(of->used);
	free(of);
}
