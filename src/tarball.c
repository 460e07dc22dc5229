/*
 * tarball: pax tar archives through libarchive, with sizes known in advance.
 *
 * libarchive's writers run unblocked (bytes_per_block 0): each piece goes
 * straight to our callback, so nothing waits inside libarchive and nothing
 * pads the archive to a record size. Our callback buffers the small pieces
 * and writes with pwrite, which makes three things simple:
 *  - tarball_entry_size asks libarchive itself for the header it would
 *    write (a probe writer that only counts), so predictions are exact;
 *  - between entries a writer holds no state, so two writers can take turns
 *    on one archive: one for all-ASCII names, one with hdrcharset=BINARY
 *    for the others (a BINARY writer puts a pax header on every entry);
 *  - a file that changes while it is read is taken out again by cutting the
 *    archive back to where its entry began and dropping the writer that was
 *    in the middle of it.
 * The callback never reports a failure to libarchive (a writer that saw one
 * can no longer be freed cleanly); failures are kept in write_errno and
 * checked after every libarchive call.
 */
#include <sys/stat.h>
#include <sys/types.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "errbuf.h"
#include "strbuf.h"
#include "tarball.h"

#define TAR_BLOCK	512
#define TAR_END_SIZE	(2 * TAR_BLOCK)
#define READ_BUF_SIZE	(1024 * 1024)
#define WRITE_BUF_SIZE	(256 * 1024)
#define SHA256_LEN	32

enum hdr_charset { HDR_ASCII, HDR_BINARY, HDR_NCHARSETS };

struct tarball {
	int		 fd;
	off_t		 base;		/* out_fd's offset at tarball_new */
	struct archive	*writer[HDR_NCHARSETS];	/* made when first needed */
	int		 discarding;	/* callback refuses: freeing a writer */
	int		 write_errno;	/* first failed write, else 0 */
	int		 broken;	/* an entry is half written */
	int		 finished;
	uint64_t	 flushed;	/* bytes already in the file */
	unsigned char	*wbuf;		/* bytes after those */
	size_t		 wlen;
	unsigned char	*rbuf;
	EVP_MD_CTX	*md;
};

struct probe {
	uint64_t	bytes;
	int		stop;
};

static int
pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = pwrite(fd, p, len, off)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static ssize_t
pread_retry(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n;

	do
		n = pread(fd, buf, len, off);
	while (n == -1 && errno == EINTR);
	return n;
}

static int
tarball_flush(struct tarball *t)
{
	if (t->wlen == 0)
		return 0;
	if (pwrite_all(t->fd, t->wbuf, t->wlen,
	    t->base + (off_t)t->flushed) == -1) {
		t->write_errno = errno;
		return -1;
	}
	t->flushed += t->wlen;
	t->wlen = 0;
	return 0;
}

/* Small pieces (headers, padding, small files) are gathered; big ones go
 * straight to the file. */
static void
tarball_put(struct tarball *t, const void *buf, size_t len)
{
	if (t->wlen + len > WRITE_BUF_SIZE && tarball_flush(t) == -1)
		return;
	if (len < WRITE_BUF_SIZE) {
		memcpy(t->wbuf + t->wlen, buf, len);
		t->wlen += len;
		return;
	}
	if (pwrite_all(t->fd, buf, len, t->base + (off_t)t->flushed) == -1) {
		t->write_errno = errno;
		return;
	}
	t->flushed += len;
}

static la_ssize_t
tarball_write_cb(struct archive *a, void *arg, const void *buf, size_t len)
{
	struct tarball *t = arg;

	(void)a;
	if (t->discarding)
		return -1;
	if (t->write_errno == 0)
		tarball_put(t, buf, len);
	return (la_ssize_t)len;
}

static la_ssize_t
probe_write_cb(struct archive *a, void *arg, const void *buf, size_t len)
{
	struct probe *p = arg;

	(void)a;
	(void)buf;
	if (p->stop)
		return -1;
	p->bytes += len;
	return (la_ssize_t)len;
}

/* A restricted pax writer passing every piece straight to cb. Setting up
 * can only fail for want of memory. */
static struct archive *
writer_new(enum hdr_charset cs, archive_write_callback *cb, void *arg)
{
	struct archive *a;

	if ((a = archive_write_new()) == NULL)
		abort();
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    (cs == HDR_BINARY && archive_write_set_format_option(a, "pax",
	    "hdrcharset", "BINARY") != ARCHIVE_OK) ||
	    archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
	    archive_write_open(a, arg, NULL, cb, NULL) != ARCHIVE_OK)
		abort();
	return a;
}

static struct archive *
tarball_writer(struct tarball *t, enum hdr_charset cs)
{
	if (t->writer[cs] == NULL)
		t->writer[cs] = writer_new(cs, tarball_write_cb, t);
	return t->writer[cs];
}

/* Free a writer without letting it write anything more: neither the rest
 * of an entry it is in the middle of, nor an end-of-archive marker. */
static void
tarball_drop_writer(struct tarball *t, enum hdr_charset cs)
{
	if (t->writer[cs] == NULL)
		return;
	t->discarding = 1;
	archive_write_free(t->writer[cs]);
	t->discarding = 0;
	t->writer[cs] = NULL;
}

/* ASCII names need no charset; any other name is stored as raw bytes. */
static enum hdr_charset
name_charset(const char *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] >= 0x80)
			return HDR_BINARY;
	return HDR_ASCII;
}

/* What is wrong with an entry name, or NULL: it must be a canonical
 * relative path, so that extracting it stays inside the directory. */
static const char *
name_problem(const char *name, size_t len)
{
	const char *p, *q, *end = name + len;

	if (len == 0)
		return "is empty";
	if (memchr(name, '\0', len) != NULL)
		return "holds a NUL byte";
	if (name[0] == '/')
		return "is absolute";
	for (p = name;; p = q + 1) {
		if ((q = memchr(p, '/', (size_t)(end - p))) == NULL)
			q = end;
		if (q == p)
			return "has an empty component";
		if ((q - p == 1 && p[0] == '.') ||
		    (q - p == 2 && p[0] == '.' && p[1] == '.'))
			return "has a '.' or '..' component";
		if (q == end)
			return NULL;
	}
}

static struct archive_entry *
entry_new(const char *name, size_t name_len, const struct stat *st)
{
	struct archive_entry *e;
	char *path;

	if ((e = archive_entry_new()) == NULL)
		abort();
	path = xstrndup(name, name_len);
	archive_entry_copy_pathname(e, path);
	free(path);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, st->st_mode & 0777);
	archive_entry_set_uid(e, st->st_uid);
	archive_entry_set_gid(e, st->st_gid);
	archive_entry_set_size(e, st->st_size);
	archive_entry_set_mtime(e, st->st_mtim.tv_sec, 0);
	return e;
}

static uint64_t
padded(off_t size)
{
	return ((uint64_t)size + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
}

/* Is b still the file a describes? */
static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	    a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* After a libarchive call on t failed or t's output did. */
static void
tarball_error(struct tarball *t, struct archive *a, struct errbuf *eb)
{
	if (t->write_errno != 0) {
		errno = t->write_errno;
		errbuf_setsys(eb, ERR_IO, "write archive");
	} else if (a != NULL && archive_error_string(a) != NULL)
		errbuf_set(eb, ERR_INTERNAL, "archive: %s",
		    archive_error_string(a));
	else
		errbuf_set(eb, ERR_INTERNAL, "archive: libarchive failed");
}

static int
tarball_usable(const struct tarball *t, struct errbuf *eb)
{
	if (t->finished) {
		errbuf_set(eb, ERR_INTERNAL, "archive already finished");
		return -1;
	}
	if (t->broken) {
		errbuf_set(eb, ERR_INTERNAL,
		    "archive unusable after an earlier error");
		return -1;
	}
	return 0;
}

struct tarball *
tarball_new(int out_fd, struct errbuf *eb)
{
	struct tarball *t;
	off_t base;
	int fl;

	if ((fl = fcntl(out_fd, F_GETFL)) == -1) {
		errbuf_setsys(eb, ERR_IO, "archive descriptor");
		return NULL;
	}
	if ((fl & O_ACCMODE) == O_RDONLY || (fl & O_APPEND) != 0) {
		errbuf_set(eb, ERR_INTERNAL,
		    "archive descriptor is read-only or in append mode");
		return NULL;
	}
	if ((base = lseek(out_fd, 0, SEEK_CUR)) == -1) {
		errbuf_setsys(eb, ERR_IO, "seek archive");
		return NULL;
	}
	t = xcalloc(1, sizeof(*t));
	t->fd = out_fd;
	t->base = base;
	t->wbuf = xmalloc(WRITE_BUF_SIZE);
	t->rbuf = xmalloc(READ_BUF_SIZE);
	if ((t->md = EVP_MD_CTX_new()) == NULL)
		abort();
	return t;
}

uint64_t
tarball_entry_size(const char *name, size_t name_len, const struct stat *st)
{
	struct probe p = { 0, 0 };
	struct archive_entry *e;
	struct archive *a;
	int r;

	if (name_problem(name, name_len) != NULL || !S_ISREG(st->st_mode))
		return UINT64_MAX;
	e = entry_new(name, name_len, st);
	a = writer_new(name_charset(name, name_len), probe_write_cb, &p);
	r = archive_write_header(a, e);
	p.stop = 1;	/* the data's size is known: do not write it */
	archive_write_free(a);
	archive_entry_free(e);
	if (r < ARCHIVE_WARN)
		return UINT64_MAX;
	return p.bytes + padded(st->st_size);
}

uint64_t
tarball_end_size(void)
{
	return TAR_END_SIZE;
}

uint64_t
tarball_size(const struct tarball *t)
{
	return t->flushed + t->wlen;
}

/*
 * Feed size bytes of fd to SHA-256 and the archive in one pass. Returns 1
 * when the file holds fewer or more bytes than size.
 */
static int
tarball_copy(struct tarball *t, struct archive *a, int fd, off_t size,
    unsigned char md[SHA256_LEN], struct errbuf *eb)
{
	off_t done = 0;
	size_t want;
	ssize_t n;
	char extra;

	if (EVP_DigestInit_ex(t->md, EVP_sha256(), NULL) != 1) {
		errbuf_set(eb, ERR_INTERNAL, "SHA-256 init failed");
		return -1;
	}
	while (done < size) {
		want = size - done < READ_BUF_SIZE ?
		    (size_t)(size - done) : READ_BUF_SIZE;
		if ((n = pread_retry(fd, t->rbuf, want, done)) == -1) {
			errbuf_setsys(eb, ERR_IO, "read");
			return -1;
		}
		if (n == 0)
			return 1;
		if (EVP_DigestUpdate(t->md, t->rbuf, (size_t)n) != 1) {
			errbuf_set(eb, ERR_INTERNAL, "SHA-256 update failed");
			return -1;
		}
		if (archive_write_data(a, t->rbuf, (size_t)n) != n ||
		    t->write_errno != 0) {
			tarball_error(t, a, eb);
			return -1;
		}
		done += n;
	}
	if ((n = pread_retry(fd, &extra, 1, size)) == -1) {
		errbuf_setsys(eb, ERR_IO, "read");
		return -1;
	}
	if (n > 0)
		return 1;
	if (EVP_DigestFinal_ex(t->md, md, NULL) != 1) {
		errbuf_set(eb, ERR_INTERNAL, "SHA-256 final failed");
		return -1;
	}
	return 0;
}

/* Take the entry being written out again: the archive is cut back to
 * 'to' bytes and the writer that was in the middle of it is dropped. */
static int
tarball_rollback(struct tarball *t, enum hdr_charset cs, uint64_t to,
    struct errbuf *eb)
{
	tarball_drop_writer(t, cs);
	if (to >= t->flushed) {
		t->wlen = to - t->flushed;
		return 0;
	}
	if (ftruncate(t->fd, t->base + (off_t)to) == -1) {
		errbuf_setsys(eb, ERR_IO, "truncate archive");
		return -1;
	}
	t->flushed = to;
	t->wlen = 0;
	return 0;
}

/* Write the entry: header, data, padding; 1 when the file changed. */
static int
tarball_write_entry(struct tarball *t, enum hdr_charset cs,
    struct archive_entry *e, int in_fd, const struct stat *st,
    uint64_t *offset, unsigned char md[SHA256_LEN], struct errbuf *eb)
{
	struct archive *a = tarball_writer(t, cs);
	struct stat after;
	int rc;

	if (archive_write_header(a, e) < ARCHIVE_WARN || t->write_errno != 0) {
		tarball_error(t, a, eb);
		return -1;
	}
	*offset = tarball_size(t);
	if ((rc = tarball_copy(t, a, in_fd, st->st_size, md, eb)) != 0)
		return rc;
	if (archive_write_finish_entry(a) != ARCHIVE_OK ||
	    t->write_errno != 0) {
		tarball_error(t, a, eb);
		return -1;
	}
	if (fstat(in_fd, &after) == -1) {
		errbuf_setsys(eb, ERR_IO, "fstat");
		return -1;
	}
	return same_file(st, &after) ? 0 : 1;
}

int
tarball_add(struct tarball *t, const char *name, size_t name_len, int in_fd,
    const struct stat *st, uint64_t *data_offset, unsigned char sha256[32],
    struct errbuf *eb)
{
	struct archive_entry *e;
	enum hdr_charset cs = name_charset(name, name_len);
	unsigned char md[SHA256_LEN];
	uint64_t start = tarball_size(t), offset = 0;
	struct stat before;
	const char *problem;
	int rc;

	if (tarball_usable(t, eb) == -1)
		return -1;
	if ((problem = name_problem(name, name_len)) != NULL) {
		errbuf_set(eb, ERR_INTERNAL, "entry name %s", problem);
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		errbuf_set(eb, ERR_INTERNAL, "entry is not a regular file");
		return -1;
	}
	if (fstat(in_fd, &before) == -1) {
		errbuf_setsys(eb, ERR_IO, "fstat");
		return -1;
	}
	if (!same_file(st, &before))
		return 1;
	e = entry_new(name, name_len, st);
	t->broken = 1;
	rc = tarball_write_entry(t, cs, e, in_fd, st, &offset, md, eb);
	archive_entry_free(e);
	if (rc == 1 && tarball_rollback(t, cs, start, eb) == -1)
		return -1;
	if (rc == -1)
		return -1;
	t->broken = 0;
	if (rc == 0) {
		*data_offset = offset;
		memcpy(sha256, md, SHA256_LEN);
	}
	return rc;
}

int
tarball_finish(struct tarball *t, struct errbuf *eb)
{
	struct archive *a;

	if (tarball_usable(t, eb) == -1)
		return -1;
	/* One end-of-archive marker, from one writer. */
	tarball_drop_writer(t, HDR_BINARY);
	a = tarball_writer(t, HDR_ASCII);
	t->broken = 1;
	if (archive_write_close(a) != ARCHIVE_OK || t->write_errno != 0) {
		tarball_error(t, a, eb);
		return -1;
	}
	archive_write_free(a);
	t->writer[HDR_ASCII] = NULL;
	if (tarball_flush(t) == -1) {
		tarball_error(t, NULL, eb);
		return -1;
	}
	t->broken = 0;
	t->finished = 1;
	return 0;
}

void
tarball_free(struct tarball *t)
{
	if (t == NULL)
		return;
	for (int cs = 0; cs < HDR_NCHARSETS; cs++)
		tarball_drop_writer(t, (enum hdr_charset)cs);
	EVP_MD_CTX_free(t->md);
	free(t->wbuf);
	free(t->rbuf);
	free(t);
}
