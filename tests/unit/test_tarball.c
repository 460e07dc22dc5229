/*
 * test_tarball: archives checked byte for byte. Predicted sizes against the
 * real growth, data offsets by pread, entries extracted by GNU tar and by
 * bsdtar (when installed) and compared with the originals.
 *
 * pread and pwrite are defined here: the library is linked statically into
 * this program, so its calls land here, which lets the tests inject short
 * reads and writes, EINTR, ENOSPC, and files that change while read.
 */
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "check.h"
#include "errbuf.h"
#include "strbuf.h"
#include "tarball.h"

#define MIB		(1024 * 1024)
#define MAX_FILES	40
#define MAX_RECS	4096

extern char **environ;

/* What pread and pwrite do to one descriptor each (-1: none). */
static struct {
	int		read_fd;
	int		read_calls;
	size_t		read_max;	/* bytes per call at most, 0: any */
	int		read_eintr;	/* calls to fail with EINTR first */
	void		(*on_read)(int fd, int call);
	int		write_fd;
	size_t		write_max;
	int		write_eintr;
	uint64_t	write_room;	/* then ENOSPC */
} inj;

static char root[] = "/tmp/s3b-test-tarball-XXXXXX";
static int rootfd = -1;

static void
inj_reset(void)
{
	memset(&inj, 0, sizeof(inj));
	inj.read_fd = -1;
	inj.write_fd = -1;
	inj.write_room = UINT64_MAX;
}

ssize_t
pread(int fd, void *buf, size_t len, off_t off)
{
	if (fd != -1 && fd == inj.read_fd) {
		if (inj.on_read != NULL)
			inj.on_read(fd, inj.read_calls);
		inj.read_calls++;
		if (inj.read_eintr > 0) {
			inj.read_eintr--;
			errno = EINTR;
			return -1;
		}
		if (inj.read_max != 0 && len > inj.read_max)
			len = inj.read_max;
	}
	return syscall(SYS_pread64, fd, buf, len, off);
}

ssize_t
pwrite(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n;

	if (fd != -1 && fd == inj.write_fd) {
		if (inj.write_eintr > 0) {
			inj.write_eintr--;
			errno = EINTR;
			return -1;
		}
		if (inj.write_max != 0 && len > inj.write_max)
			len = inj.write_max;
		if (inj.write_room == 0) {
			errno = ENOSPC;
			return -1;
		}
		if (len > inj.write_room)
			len = inj.write_room;
	}
	n = syscall(SYS_pwrite64, fd, buf, len, off);
	if (n > 0 && fd == inj.write_fd && inj.write_room != UINT64_MAX)
		inj.write_room -= (uint64_t)n;
	return n;
}

/* File contents: a byte stream in which no two nearby offsets agree. */
static unsigned char
pattern(uint64_t off, unsigned seed)
{
	uint64_t x = (off + 1) * 0x9e3779b97f4a7c15ULL ^
	    (seed + 1) * 0xbf58476d1ce4e5b9ULL;

	return (unsigned char)(x >> 56 ^ x >> 23);
}

static void
fill(unsigned char *buf, size_t n, uint64_t off, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pattern(off + i, seed);
}

static size_t
chunk(off_t left, size_t max)
{
	return left < (off_t)max ? (size_t)left : max;
}

/* Does fd hold size bytes of the seed's pattern at off? */
static int
fd_has(int fd, off_t off, off_t size, unsigned seed)
{
	static unsigned char got[65536], want[65536];
	off_t done = 0;
	size_t n;

	while (done < size) {
		n = chunk(size - done, sizeof(got));
		if (pread(fd, got, n, off + done) != (ssize_t)n)
			return 0;
		fill(want, n, (uint64_t)done, seed);
		if (memcmp(got, want, n) != 0)
			return 0;
		done += (off_t)n;
	}
	return 1;
}

static void
sha_of(off_t size, unsigned seed, unsigned char out[32])
{
	unsigned char buf[8192];
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	off_t done = 0;
	size_t n;

	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	while (done < size) {
		n = chunk(size - done, sizeof(buf));
		fill(buf, n, (uint64_t)done, seed);
		EVP_DigestUpdate(c, buf, n);
		done += (off_t)n;
	}
	EVP_DigestFinal_ex(c, out, NULL);
	EVP_MD_CTX_free(c);
}

static int
set_mtime(int fd, time_t sec, long nsec)
{
	struct timespec ts[2];

	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = sec;
	ts[1].tv_nsec = nsec;
	return futimens(fd, ts);
}

static int
make_file(int dfd, const char *name, off_t size, unsigned seed, mode_t mode,
    time_t mtime, long nsec)
{
	static unsigned char buf[65536];
	off_t done = 0;
	size_t n;
	int fd, rc = -1;

	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	while (done < size) {
		n = chunk(size - done, sizeof(buf));
		fill(buf, n, (uint64_t)done, seed);
		if (write(fd, buf, n) != (ssize_t)n)
			goto out;
		done += (off_t)n;
	}
	if (fchmod(fd, mode) == -1 || set_mtime(fd, mtime, nsec) == -1)
		goto out;
	rc = 0;
 out:
	close(fd);
	return rc;
}

static int
subdir(const char *name)
{
	if (mkdirat(rootfd, name, 0700) == -1)
		return -1;
	return openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int
new_archive(const char *name)
{
	return openat(rootfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600);
}

/* An entry added, to be checked in the finished archive. */
struct rec {
	uint64_t	off;
	off_t		size;
	unsigned	seed;
};

struct recs {
	struct rec	r[MAX_RECS];
	size_t		n;
	uint64_t	sum;	/* of the predicted entry sizes */
};

/*
 * Add one file and check what can be checked at once: growth equal to the
 * prediction and the hash. 0 when all held, else -1 (details on stderr).
 */
static int
add_checked(struct tarball *t, struct recs *rs, const char *name,
    size_t name_len, int fd, const struct stat *st, unsigned seed)
{
	uint64_t want_size, before, off = 0;
	unsigned char got[32], want[32];
	struct errbuf eb;
	int rc;

	errbuf_clear(&eb);
	want_size = tarball_entry_size(name, name_len, st);
	before = tarball_size(t);
	if ((rc = tarball_add(t, name, name_len, fd, st, &off, got,
	    &eb)) != 0) {
		fprintf(stderr, "  add (%zu bytes of name): %d %s\n",
		    name_len, rc, eb.msg);
		return -1;
	}
	sha_of(st->st_size, seed, want);
	if (tarball_size(t) - before != want_size ||
	    memcmp(got, want, 32) != 0 || off < before + 512) {
		fprintf(stderr, "  add (%zu bytes of name, size %jd): "
		    "grew %ju, predicted %ju, offset %ju\n", name_len,
		    (intmax_t)st->st_size, (uintmax_t)(tarball_size(t) -
		    before), (uintmax_t)want_size, (uintmax_t)off);
		return -1;
	}
	if (rs->n < MAX_RECS) {
		rs->r[rs->n].off = off;
		rs->r[rs->n].size = st->st_size;
		rs->r[rs->n].seed = seed;
		rs->n++;
	}
	rs->sum += want_size;
	return 0;
}

/* In the finished archive: each file's bytes at its offset, right after a
 * ustar header of a regular file (type '0', never a hardlink '1'). */
static int
recs_ok(int afd, off_t base, const struct recs *rs)
{
	unsigned char hdr[512];
	int bad = 0;

	for (size_t i = 0; i < rs->n; i++) {
		const struct rec *r = &rs->r[i];

		if (pread(afd, hdr, sizeof(hdr),
		    base + (off_t)r->off - 512) != 512 ||
		    hdr[156] != '0' || memcmp(hdr + 257, "ustar", 5) != 0 ||
		    !fd_has(afd, base + (off_t)r->off, r->size, r->seed)) {
			fprintf(stderr, "  entry %zu at %ju: wrong\n", i,
			    (uintmax_t)r->off);
			bad++;
		}
	}
	return bad == 0;
}

static int
finish_checked(struct tarball *t, int afd, off_t base, const struct recs *rs)
{
	struct errbuf eb;
	struct stat st;

	errbuf_clear(&eb);
	if (tarball_finish(t, &eb) != 0) {
		fprintf(stderr, "  finish: %s\n", eb.msg);
		return 0;
	}
	if (fstat(afd, &st) == -1 ||
	    (uint64_t)st.st_size != (uint64_t)base + tarball_size(t) ||
	    tarball_size(t) != rs->sum + tarball_end_size()) {
		fprintf(stderr, "  finished size %ju, predicted %ju\n",
		    (uintmax_t)tarball_size(t),
		    (uintmax_t)(rs->sum + tarball_end_size()));
		return 0;
	}
	return recs_ok(afd, base, rs);
}

/* Open dfd/name and add it under the same name. */
static int
add_file(struct tarball *t, struct recs *rs, int dfd, const char *name,
    size_t name_len, unsigned seed)
{
	struct stat st;
	int fd, rc = -1;

	if ((fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		return -1;
	if (fstat(fd, &st) == 0)
		rc = add_checked(t, rs, name, name_len, fd, &st, seed);
	close(fd);
	return rc;
}

/* Run a program with stdout and stderr to /dev/null; 127 if not found. */
static int
run(char *argv[], const char *lc_all)
{
	posix_spawn_file_actions_t fa;
	char *old = getenv("LC_ALL") ? xstrdup(getenv("LC_ALL")) : NULL;
	pid_t pid;
	int rc, status;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (lc_all != NULL)
		setenv("LC_ALL", lc_all, 1);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	if (old != NULL)
		setenv("LC_ALL", old, 1);
	else
		unsetenv("LC_ALL");
	free(old);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return rc == ENOENT ? 127 : -1;
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A file of the extraction test. */
struct tf {
	char	name[300];
	size_t	name_len;
	off_t	size;
	unsigned seed;
	mode_t	mode;
	time_t	mtime;
	long	nsec;
};

/* Did extraction into dir give exactly these files, bytes, modes and
 * mtimes (whole seconds), and nothing else? */
static int
extracted_ok(const char *dir, const struct tf *files, size_t n)
{
	struct dirent *de;
	struct stat st;
	size_t count = 0;
	DIR *d;
	int dfd, fd, bad = 0;

	if ((d = opendir(dir)) == NULL)
		return 0;
	dfd = dirfd(d);
	for (size_t i = 0; i < n; i++) {
		const struct tf *f = &files[i];

		fd = openat(dfd, f->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1 || fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
		    st.st_size != f->size || st.st_nlink != 1 ||
		    (st.st_mode & 07777) != (f->mode & 0777) ||
		    st.st_mtim.tv_sec != f->mtime || st.st_mtim.tv_nsec != 0 ||
		    !fd_has(fd, 0, f->size, f->seed)) {
			fprintf(stderr, "  %s: file %zu (%zu bytes of name) "
			    "differs\n", dir, i, f->name_len);
			bad++;
		}
		if (fd != -1)
			close(fd);
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			count++;
	closedir(d);
	if (count != n) {
		fprintf(stderr, "  %s: %zu entries, want %zu\n", dir, count, n);
		bad++;
	}
	return bad == 0;
}

/* Extract with tool into a new directory under root and compare. 127 when
 * the tool is not installed, else whether all matched. */
static int
extract_and_compare(const char *tool, const char *lc_all, const char *tar,
    const char *outname, const struct tf *files, size_t n)
{
	char apath[256], opath[256];
	char *argv[] = { (char *)tool, "-x", "-p", "--no-same-owner", "-f",
	    apath, "-C", opath, NULL };
	int rc;

	snprintf(apath, sizeof(apath), "%s/%s", root, tar);
	snprintf(opath, sizeof(opath), "%s/%s", root, outname);
	if (mkdir(opath, 0700) == -1)
		return 0;
	if ((rc = run(argv, lc_all)) == 127)
		return 127;
	if (rc != 0) {
		fprintf(stderr, "  %s -x: exit %d\n", tool, rc);
		return 0;
	}
	return extracted_ok(opath, files, n);
}

static void
tf_set(struct tf *f, const char *name, size_t name_len, off_t size,
    mode_t mode, time_t mtime, long nsec)
{
	static unsigned seed;

	memcpy(f->name, name, name_len);
	f->name[name_len] = '\0';
	f->name_len = name_len;
	f->size = size;
	f->seed = ++seed;
	f->mode = mode;
	f->mtime = mtime;
	f->nsec = nsec;
}

static void
tf_add(struct tf *files, size_t *n, const char *name, off_t size,
    mode_t mode, time_t mtime, long nsec)
{
	tf_set(&files[(*n)++], name, strlen(name), size, mode, mtime, nsec);
}

/* A name of len bytes: ASCII, two-byte UTF-8 ("é"), or not UTF-8. */
static size_t
make_name(char *buf, size_t len, int kind)
{
	for (size_t i = 0; i < len; i++) {
		if (kind == 1 && i + 1 < len && i % 2 == 0)
			buf[i] = (char)0xc3;
		else if (kind == 1 && i % 2 == 1)
			buf[i] = (char)0xa9;
		else if (kind == 2 && i % 7 == 3)
			buf[i] = (char)0xff;
		else
			buf[i] = (char)('a' + i % 26);
	}
	buf[len] = '\0';
	return len;
}

static void
test_extract(void)
{
	static struct tf files[MAX_FILES];
	static struct recs rs;
	struct tarball *t = NULL;
	struct errbuf eb;
	char name[300];
	size_t n = 0, i, linked;
	int src, afd, bad = 0, rc;
	time_t now = 1700000000;

	tf_add(files, &n, "empty", 0, 0644, now, 0);
	tf_add(files, &n, "one", 1, 0600, now + 1, 0);
	tf_add(files, &n, "b511", 511, 0640, now + 2, 0);
	tf_add(files, &n, "b512", 512, 0755, now + 3, 0);
	tf_add(files, &n, "b513", 513, 0444, now + 4, 0);
	tf_add(files, &n, "mib", MIB, 0644, now + 5, 0);
	tf_add(files, &n, "mib+7", MIB + 7, 0604, now + 6, 0);
	tf_add(files, &n, "three-mib", 3 * MIB + 5, 0644, now + 7, 0);
	tf_add(files, &n, "with space.txt", 1000, 0664, now + 8, 0);
	tf_add(files, &n, "new\nline", 10, 0644, now + 9, 0);
	tf_add(files, &n, "tab\there", 3, 0644, now + 10, 0);
	tf_add(files, &n, "nano", 700, 0644, now + 11, 123456789);
	tf_add(files, &n, "nano-\xc3\xa9", 701, 0644, now + 11, 987654321);
	tf_add(files, &n, "before-1970", 20, 0644, -86400 * 400, 0);
	tf_add(files, &n, "after-2038", 30, 0644, 4102444800, 0);
	tf_add(files, &n, "setuid", 40, 04755, now + 12, 0);
	/* "café ünïcødé" */
	tf_add(files, &n,
	    "caf\xc3\xa9 \xc3\xbcn\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9",
	    100, 0644, now + 13, 0);
	tf_add(files, &n, "bad\xff\xfe\x80name", 200, 0644, now + 14, 0);
	linked = n;
	tf_add(files, &n, "linked-a", 50, 0644, now + 15, 0);
	for (i = 0; i < 3; i++) {
		size_t lens[] = { 100, 101, 255 };

		make_name(name, lens[i], 0);
		tf_set(&files[n++], name, lens[i], 64, 0644, now + 20, 0);
	}
	make_name(name, 255, 1);
	tf_set(&files[n++], name, 255, 65, 0644, now + 21, 0);
	make_name(name, 254, 2);
	tf_set(&files[n++], name, 254, 66, 0644, now + 22, 0);

	if ((src = subdir("extract-src")) == -1) {
		CHECK(!"extract-src");
		return;
	}
	for (i = 0; i < n; i++)
		if (make_file(src, files[i].name, files[i].size, files[i].seed,
		    files[i].mode, files[i].mtime, files[i].nsec) == -1)
			bad++;
	CHECK(bad == 0);
	/* A second name for the same inode: an entry of its own too. */
	tf_set(&files[n], "linked-b", 8, files[linked].size,
	    files[linked].mode, files[linked].mtime, 0);
	files[n].seed = files[linked].seed;
	CHECK(linkat(src, "linked-a", src, "linked-b", 0) == 0);
	n++;

	errbuf_clear(&eb);
	CHECK((afd = new_archive("extract.tar")) != -1);
	CHECK((t = tarball_new(afd, &eb)) != NULL);
	if (t == NULL)
		goto out;
	for (i = 0, bad = 0; i < n; i++)
		if (add_file(t, &rs, src, files[i].name, files[i].name_len,
		    files[i].seed) == -1)
			bad++;
	CHECK(bad == 0);
	CHECK(finish_checked(t, afd, 0, &rs));

	CHECK(extract_and_compare("tar", "C", "extract.tar", "gnu-c", files,
	    n) == 1);
	CHECK(extract_and_compare("tar", "C.UTF-8", "extract.tar", "gnu-utf8",
	    files, n) == 1);
	rc = extract_and_compare("bsdtar", "C", "extract.tar", "bsd-c", files,
	    n);
	if (rc == 127)
		printf("%s: bsdtar not installed (libarchive-tools): "
		    "skipped\n", __FILE__);
	else {
		CHECK(rc == 1);
		CHECK(extract_and_compare("bsdtar", "C.UTF-8", "extract.tar",
		    "bsd-utf8", files, n) == 1);
	}
 out:
	tarball_free(t);
	close(afd);
	close(src);
}

/* One backing file per size; stat it after setting its mtime. */
static int
backing(int dfd, off_t size, unsigned seed)
{
	char name[64];

	snprintf(name, sizeof(name), "size-%jd", (intmax_t)size);
	if (make_file(dfd, name, size, seed, 0644, 1700000000, 0) == -1)
		return -1;
	return openat(dfd, name, O_RDWR | O_CLOEXEC);
}

/* Every name length, charset and metadata edge: growth equals prediction. */
static void
test_predictions(void)
{
	static struct recs rs;
	static const off_t sizes[] = { 0, 1, 511, 512, 513, MIB, MIB + 1,
	    3 * MIB + 5 };
	static const struct { time_t sec; long nsec; } mtimes[] = {
		{ 1700000000, 0 }, { 1700000000, 123456789 }, { 0, 0 },
		{ -1, 0 }, { -86400 * 365, 999999999 }, { 0x7ffffffe, 0 },
		{ 0x7fffffff, 0 }, { 0x80000000, 1 }, { 4102444800, 0 },
	};
	static const uid_t ids[] = { 0, 1000, 262143, 262144, 4000000000u };
	static const mode_t modes[] = { 0644, 04755, 0, 0777 };
	struct tarball *t = NULL;
	struct stat st, st2;
	struct errbuf eb;
	char name[1200];
	size_t len;
	unsigned seed = 1000;
	int dir, afd, fd, bad = 0, kind;

	if ((dir = subdir("predict")) == -1) {
		CHECK(!"predict");
		return;
	}
	errbuf_clear(&eb);
	afd = new_archive("predict.tar");
	if ((t = tarball_new(afd, &eb)) == NULL) {
		CHECK(!"tarball_new");
		goto out;
	}

	/* Names of every length to 700 bytes, each charset, one '/'
	 * variant that fits ustar's prefix and one that does not. */
	if ((fd = backing(dir, 3, seed)) == -1 || fstat(fd, &st) == -1) {
		CHECK(!"backing");
		goto out;
	}
	for (kind = 0; kind < 3; kind++)
		for (len = 1; len <= 700; len++) {
			make_name(name, len, kind);
			if (add_checked(t, &rs, name, len, fd, &st, seed) == -1)
				bad++;
		}
	for (len = 1; len <= 200; len += 7) {
		size_t n = make_name(name, 150, 0);

		name[len < 148 ? len : 148] = '/';
		n += (size_t)snprintf(name + n, sizeof(name) - n, "/%s",
		    "file");
		if (add_checked(t, &rs, name, n, fd, &st, seed) == -1)
			bad++;
	}
	CHECK(add_checked(t, &rs, "line\nbreak", 10, fd, &st, seed) == 0);
	close(fd);
	CHECK(bad == 0);

	/* Sizes across block and buffer boundaries, with metadata edges. */
	bad = 0;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		if ((fd = backing(dir, sizes[s], ++seed)) == -1) {
			bad++;
			continue;
		}
		for (size_t m = 0; m < sizeof(mtimes) / sizeof(mtimes[0]);
		    m++) {
			if (set_mtime(fd, mtimes[m].sec,
			    mtimes[m].nsec) == -1 || fstat(fd, &st) == -1) {
				bad++;
				continue;
			}
			st.st_uid = ids[m % 5];
			st.st_gid = ids[(m + 2) % 5];
			st.st_mode = S_IFREG | modes[m % 4];
			kind = (int)(m % 3);
			len = make_name(name, m * 40 + 1, kind);
			if (add_checked(t, &rs, name, len, fd, &st, seed) == -1)
				bad++;
		}
		close(fd);
	}
	CHECK(bad == 0);
	CHECK(finish_checked(t, afd, 0, &rs));

	/* Sub-second mtimes are dropped, so they cost nothing. */
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFREG | 0644;
	st.st_size = 100;
	st.st_mtim.tv_sec = 1700000000;
	st2 = st;
	st2.st_mtim.tv_nsec = 1;
	CHECK(tarball_entry_size("x", 1, &st) == 1024);
	CHECK(tarball_entry_size("x", 1, &st2) == 1024);
	len = make_name(name, 300, 2);
	CHECK(tarball_entry_size(name, len, &st) ==
	    tarball_entry_size(name, len, &st2));
	/* Sizes from 8 GiB need a pax header ("size"). */
	st.st_size = ((off_t)8 << 30) - 1;
	CHECK(tarball_entry_size("x", 1, &st) == 512 + ((uint64_t)8 << 30));
	st.st_size = (off_t)8 << 30;
	CHECK(tarball_entry_size("x", 1, &st) == 1536 + ((uint64_t)8 << 30));
	CHECK(tarball_end_size() == 1024);
 out:
	tarball_free(t);
	close(afd);
	close(dir);
}

static void
test_refused(void)
{
	static const char *const names[] = { "/abs", "..", "../x", "a/../b",
	    "a/..", ".", "./a", "a/.", "a//b", "a/", "/" };
	struct tarball *t = NULL;
	unsigned char sha[32];
	uint64_t off = 7;
	struct stat st;
	struct errbuf eb;
	int dir, afd = -1, fd = -1, pfd[2], bad = 0;
	char *p;

	if ((dir = subdir("refused")) == -1 ||
	    make_file(dir, "f", 10, 1, 0644, 1700000000, 0) == -1 ||
	    (fd = openat(dir, "f", O_RDONLY)) == -1 || fstat(fd, &st) == -1) {
		CHECK(!"refused setup");
		return;
	}
	afd = new_archive("refused.tar");
	errbuf_clear(&eb);
	CHECK((t = tarball_new(afd, &eb)) != NULL);
	if (t == NULL)
		goto out;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		errbuf_clear(&eb);
		if (tarball_add(t, names[i], strlen(names[i]), fd, &st, &off,
		    sha, &eb) != -1 || eb.kind != ERR_INTERNAL ||
		    tarball_entry_size(names[i], strlen(names[i]), &st) !=
		    UINT64_MAX) {
			fprintf(stderr, "  name '%s' not refused\n", names[i]);
			bad++;
		}
	}
	CHECK(bad == 0);
	CHECK(tarball_add(t, "", 0, fd, &st, &off, sha, &eb) == -1);
	CHECK(tarball_add(t, "a\0b", 3, fd, &st, &off, sha, &eb) == -1);
	st.st_mode = S_IFLNK | 0777;
	CHECK(tarball_add(t, "f", 1, fd, &st, &off, sha, &eb) == -1);
	CHECK(eb.kind == ERR_INTERNAL);
	st.st_mode = S_IFREG | 0644;
	CHECK(off == 7 && tarball_size(t) == 0);
	/* Refusals leave the archive usable. */
	errbuf_clear(&eb);
	CHECK(tarball_add(t, "f", 1, fd, &st, &off, sha, &eb) == 0);
	CHECK(off == 512);
	CHECK(tarball_finish(t, &eb) == 0);
	CHECK(tarball_add(t, "g", 1, fd, &st, &off, sha, &eb) == -1);
	CHECK(tarball_finish(t, &eb) == -1);
	tarball_free(t);
	t = NULL;

	/* Descriptors tarball_new cannot write an archive to. */
	CHECK(pipe(pfd) == 0);
	errbuf_clear(&eb);
	CHECK(tarball_new(pfd[1], &eb) == NULL && eb.kind == ERR_IO);
	close(pfd[0]);
	close(pfd[1]);
	CHECK(tarball_new(fd, &eb) == NULL && eb.kind == ERR_INTERNAL);
	p = xasprintf("%s/refused.tar", root);
	close(afd);
	afd = open(p, O_WRONLY | O_APPEND);
	free(p);
	CHECK(tarball_new(afd, &eb) == NULL && eb.kind == ERR_INTERNAL);
	tarball_free(NULL);
 out:
	tarball_free(t);
	close(afd);
	close(fd);
	close(dir);
}

/* Changes made while tarball_add reads (see inj.on_read). */
static void
shrink_on_second_read(int fd, int call)
{
	if (call == 1 && ftruncate(fd, MIB + 100) == -1)
		abort();
}

static void
grow_on_first_read(int fd, int call)
{
	struct stat st;

	if (call == 0 && (fstat(fd, &st) == -1 ||
	    syscall(SYS_pwrite64, fd, "more", 4, st.st_size) != 4))
		abort();
}

static void
touch_on_first_read(int fd, int call)
{
	if (call == 0 && set_mtime(fd, 1800000000, 0) == -1)
		abort();
}

/* Try tarball_add on dir/name with a change injected: 1 expected, and the
 * archive back where it was. */
static int
add_changing(struct tarball *t, int dir, const char *name,
    void (*change)(int, int))
{
	unsigned char sha[32];
	uint64_t before = tarball_size(t), off = 0;
	struct errbuf eb;
	struct stat st;
	int fd, rc;

	if ((fd = openat(dir, name, O_RDWR)) == -1 || fstat(fd, &st) == -1)
		return -1;
	inj_reset();
	inj.read_fd = fd;
	inj.on_read = change;
	errbuf_clear(&eb);
	rc = tarball_add(t, name, strlen(name), fd, &st, &off, sha, &eb);
	if (inj.read_calls == 0)
		rc = -2;	/* pread was not interposed */
	inj_reset();
	close(fd);
	if (rc != 1 || tarball_size(t) != before || off != 0) {
		fprintf(stderr, "  %s: rc %d (%s)\n", name, rc, eb.msg);
		return -1;
	}
	return 0;
}

/* Open a file that is not what its fstat says (procfs, sysfs). */
static int
add_lying_file(struct tarball *t, const char *path)
{
	unsigned char sha[32];
	uint64_t before = tarball_size(t), off = 0;
	struct errbuf eb;
	struct stat st;
	int fd, rc;

	if ((fd = open(path, O_RDONLY)) == -1)
		return 0;	/* not here: nothing to test */
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	errbuf_clear(&eb);
	rc = tarball_add(t, "lying", 5, fd, &st, &off, sha, &eb);
	close(fd);
	return rc == 1 && tarball_size(t) == before ? 1 : -1;
}

static void
test_changed(void)
{
	static struct tf files[4];
	static struct recs rs;
	struct tarball *t = NULL;
	unsigned char sha[32];
	struct errbuf eb;
	struct stat st;
	uint64_t off = 0;
	size_t n = 0;
	int dir, afd, fd, rc;

	tf_add(files, &n, "good1", 3000, 0644, 1700000000, 0);
	tf_add(files, &n, "good2", MIB + 3, 0600, 1700000001, 0);
	if ((dir = subdir("changed")) == -1 ||
	    make_file(dir, "good1", 3000, files[0].seed, 0644, 1700000000,
	    0) == -1 ||
	    make_file(dir, "good2", MIB + 3, files[1].seed, 0600, 1700000001,
	    0) == -1 ||
	    make_file(dir, "shrinks", 3 * MIB, 7, 0644, 1700000000, 0) == -1 ||
	    make_file(dir, "grows", 1000, 8, 0644, 1700000000, 0) == -1 ||
	    make_file(dir, "touched", 2 * MIB, 9, 0644, 1700000000, 0) == -1) {
		CHECK(!"changed setup");
		return;
	}
	afd = new_archive("changed.tar");
	errbuf_clear(&eb);
	if ((t = tarball_new(afd, &eb)) == NULL) {
		CHECK(!"tarball_new");
		goto out;
	}
	CHECK(add_file(t, &rs, dir, "good1", 5, files[0].seed) == 0);

	/* Not the file st describes: refused before anything is written. */
	fd = openat(dir, "good2", O_RDONLY);
	CHECK(fd != -1 && fstat(fd, &st) == 0);
	st.st_mtim.tv_nsec ^= 1;
	rc = tarball_add(t, "good2", 5, fd, &st, &off, sha, &eb);
	CHECK(rc == 1);
	close(fd);

	/* Cut back past what was already written to the file. */
	CHECK(add_changing(t, dir, "shrinks", shrink_on_second_read) == 0);
	/* Cut back inside the write buffer. */
	CHECK(add_changing(t, dir, "grows", grow_on_first_read) == 0);
	/* Same size, new mtime and ctime. */
	CHECK(add_changing(t, dir, "touched", touch_on_first_read) == 0);
	/* Real files whose size is not their length. */
	CHECK(add_lying_file(t, "/proc/self/status") == 1);
	CHECK(add_lying_file(t, "/sys/devices/system/cpu/online") >= 0);

	CHECK(add_file(t, &rs, dir, "good2", 5, files[1].seed) == 0);
	CHECK(finish_checked(t, afd, 0, &rs));
	CHECK(extract_and_compare("tar", NULL, "changed.tar", "changed-out",
	    files, n) == 1);
 out:
	tarball_free(t);
	close(afd);
	close(dir);
}

/* Short reads and writes and EINTR change nothing in the result. */
static void
test_io_quirks(void)
{
	static struct tf files[4];
	static struct recs rs;
	struct tarball *t = NULL;
	struct errbuf eb;
	size_t n = 0;
	int dir, afd, fd, bad = 0;
	off_t base = 700;

	tf_add(files, &n, "empty", 0, 0644, 1700000000, 0);
	tf_add(files, &n, "big", MIB + 3, 0644, 1700000000, 0);
	tf_add(files, &n, "medium", 300000, 0644, 1700000000, 0);
	tf_add(files, &n, "small", 5000, 0644, 1700000000, 0);
	if ((dir = subdir("quirks")) == -1) {
		CHECK(!"quirks");
		return;
	}
	/* The archive starts after a prefix: offsets count from its start. */
	afd = new_archive("quirks.tar");
	CHECK(afd != -1 && lseek(afd, base, SEEK_SET) == base);
	errbuf_clear(&eb);
	if ((t = tarball_new(afd, &eb)) == NULL) {
		CHECK(!"tarball_new");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (make_file(dir, files[i].name, files[i].size, files[i].seed,
		    files[i].mode, files[i].mtime, 0) == -1 ||
		    (fd = openat(dir, files[i].name, O_RDONLY)) == -1) {
			bad++;
			continue;
		}
		inj_reset();
		inj.read_fd = fd;
		inj.read_max = 4097;
		inj.read_eintr = 3;
		inj.write_fd = afd;
		inj.write_max = 1000;
		inj.write_eintr = 2;
		{
			struct stat st;

			if (fstat(fd, &st) == -1 || add_checked(t, &rs,
			    files[i].name, files[i].name_len, fd, &st,
			    files[i].seed) == -1)
				bad++;
		}
		close(fd);
	}
	CHECK(bad == 0);
	inj_reset();
	inj.write_fd = afd;
	inj.write_max = 1000;
	inj.write_eintr = 5;
	CHECK(finish_checked(t, afd, base, &rs));
	inj_reset();
	CHECK(lseek(afd, 0, SEEK_CUR) == base);
 out:
	inj_reset();
	tarball_free(t);
	close(afd);
	close(dir);
}

/* A full file system: ERR_NOSPACE, then the archive is unusable. */
static void
test_nospace(void)
{
	struct tarball *t = NULL;
	unsigned char sha[32];
	struct errbuf eb;
	struct stat st;
	uint64_t off = 0;
	int dir, afd, fd = -1, full;

	if ((dir = subdir("nospace")) == -1 ||
	    make_file(dir, "f", 2 * MIB, 3, 0644, 1700000000, 0) == -1 ||
	    make_file(dir, "s", 10, 4, 0644, 1700000000, 0) == -1 ||
	    (fd = openat(dir, "f", O_RDONLY)) == -1 || fstat(fd, &st) == -1) {
		CHECK(!"nospace setup");
		return;
	}
	afd = new_archive("nospace.tar");
	errbuf_clear(&eb);
	CHECK((t = tarball_new(afd, &eb)) != NULL);
	if (t == NULL)
		goto out;
	inj_reset();
	inj.write_fd = afd;
	inj.write_room = 100000;
	CHECK(tarball_add(t, "f", 1, fd, &st, &off, sha, &eb) == -1);
	CHECK(eb.kind == ERR_NOSPACE);
	CHECK(strstr(eb.msg, "write archive") != NULL);
	inj_reset();
	CHECK(tarball_add(t, "g", 1, fd, &st, &off, sha, &eb) == -1);
	CHECK(eb.kind == ERR_INTERNAL);
	CHECK(tarball_finish(t, &eb) == -1);
	tarball_free(t);
	t = NULL;

	/* A small entry waits in the buffer: the full disk is met by
	 * tarball_finish. */
	close(fd);
	if ((fd = openat(dir, "s", O_RDONLY)) == -1 || fstat(fd, &st) == -1) {
		CHECK(!"small file");
		goto out;
	}
	if ((full = open("/dev/full", O_WRONLY | O_CLOEXEC)) != -1) {
		errbuf_clear(&eb);
		CHECK((t = tarball_new(full, &eb)) != NULL);
		CHECK(t != NULL && tarball_add(t, "s", 1, fd, &st, &off, sha,
		    &eb) == 0);
		CHECK(t != NULL && tarball_finish(t, &eb) == -1 &&
		    eb.kind == ERR_NOSPACE);
		tarball_free(t);
		t = NULL;
		close(full);
	}
 out:
	inj_reset();
	tarball_free(t);
	close(fd);
	close(afd);
	close(dir);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int
main(void)
{
	inj_reset();
	if (mkdtemp(root) == NULL ||
	    (rootfd = open(root, O_RDONLY | O_DIRECTORY)) == -1) {
		perror("mkdtemp");
		return 1;
	}
	test_refused();
	test_predictions();
	test_extract();
	test_changed();
	test_io_quirks();
	test_nospace();
	close(rootfd);
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	CHECK_DONE();
}
