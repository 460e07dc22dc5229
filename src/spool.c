#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "spool.h"
#include "strbuf.h"

struct spool {
	char	*dir;
	int	 dirfd;
	int	 lockfd;
	int	 mpufd;
};

/* mkdir -p with mode 0700 for what it creates. */
static int
mkdirs(const char *path, struct errbuf *eb)
{
	char *p = xstrdup(path), *s;
	int rc = -1;

	for (s = p + 1; ; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;

		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST) {
			errbuf_setsys(eb, ERR_IO, "spool: mkdir '%s'", p);
			goto out;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	rc = 0;
 out:
	free(p);
	return rc;
}

int
spool_fsync_dir(int dirfd, const char *what, struct errbuf *eb)
{
	if (fsync(dirfd) == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: fsync '%s'", what);
		return -1;
	}
	return 0;
}

static int
openat_dir(int dirfd, const char *name, struct errbuf *eb)
{
	int fd;

	if (mkdirat(dirfd, name, 0700) == -1 && errno != EEXIST) {
		errbuf_setsys(eb, ERR_IO, "spool: mkdir '%s'", name);
		return -1;
	}
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		errbuf_setsys(eb, ERR_IO, "spool: open '%s'", name);
	return fd;
}

struct spool *
spool_open(const char *dir, struct errbuf *eb)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));

	sp->dirfd = sp->lockfd = sp->mpufd = -1;
	sp->dir = xstrdup(dir);
	if (mkdirs(dir, eb) == -1)
		goto fail;
	sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sp->dirfd == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: open '%s'", dir);
		goto fail;
	}
	sp->lockfd = openat(sp->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (sp->lockfd == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: open '%s/lock'", dir);
		goto fail;
	}
	if (flock(sp->lockfd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			errbuf_set(eb, ERR_LOCKED, "another run holds the lock "
			    "'%s/lock'", dir);
		else
			errbuf_setsys(eb, ERR_IO, "spool: lock '%s/lock'", dir);
		goto fail;
	}
	if ((sp->mpufd = openat_dir(sp->dirfd, "mpu", eb)) == -1)
		goto fail;
	return sp;
 fail:
	spool_close(sp);
	return NULL;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->mpufd != -1)
		close(sp->mpufd);
	if (sp->lockfd != -1)
		close(sp->lockfd);
	if (sp->dirfd != -1)
		close(sp->dirfd);
	free(sp->dir);
	free(sp);
}

const char *
spool_dir(const struct spool *sp)
{
	return sp->dir;
}

int
spool_dirfd(const struct spool *sp)
{
	return sp->dirfd;
}

static int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
spool_write_file(int dirfd, const char *name, const void *data, size_t len,
    struct errbuf *eb)
{
	char *tmp = xasprintf(".%s.tmp", name);
	int fd, rc = -1;

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: create '%s'", tmp);
		goto out;
	}
	if (write_all(fd, data, len) == -1 || fsync(fd) == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: write '%s'", tmp);
		goto out;
	}
	if (renameat(dirfd, tmp, dirfd, name) == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: rename '%s'", tmp);
		goto out;
	}
	if (spool_fsync_dir(dirfd, name, eb) == -1)
		goto out;
	rc = 0;
 out:
	if (fd != -1)
		close(fd);
	if (rc == -1)
		unlinkat(dirfd, tmp, 0);
	free(tmp);
	return rc;
}

int
spool_mpu_record(struct spool *sp, const char *bucket, const char *key,
    const char *upload_id, char **id, struct errbuf *eb)
{
	struct strbuf body = STRBUF_INIT, name = STRBUF_INIT;
	unsigned char md[32];
	unsigned int mdlen;
	int rc = -1;

	strbuf_addf(&body, "%s\n%s\n%s\n", bucket, key, upload_id);
	EVP_Digest(body.buf, body.len, md, &mdlen, EVP_sha256(), NULL);
	strbuf_addhex(&name, md, 16);
	if (spool_write_file(sp->mpufd, name.buf, body.buf, body.len, eb) == -1)
		goto out;
	*id = strbuf_detach(&name, NULL);
	rc = 0;
 out:
	strbuf_release(&body);
	strbuf_release(&name);
	return rc;
}

int
spool_mpu_forget(struct spool *sp, const char *id, struct errbuf *eb)
{
	if (unlinkat(sp->mpufd, id, 0) == -1 && errno != ENOENT) {
		errbuf_setsys(eb, ERR_IO, "spool: unlink 'mpu/%s'", id);
		return -1;
	}
	return spool_fsync_dir(sp->mpufd, "mpu", eb);
}

static int
spool_mpu_read(struct spool *sp, const char *id, spool_mpu_fn fn, void *arg)
{
	struct strbuf sb = STRBUF_INIT;
	char *key, *upload, *end;
	int fd, rc = 0;

	fd = openat(sp->mpufd, id, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		log_warn("spool: cannot open 'mpu/%s': %s", id, strerror(errno));
		return 0;
	}
	close(fd);
	{
		char *path = xasprintf("%s/mpu/%s", sp->dir, id);

		if (strbuf_read_file(&sb, path, 64 * 1024) == -1)
			sb.len = 0;
		free(path);
	}
	if ((key = memchr(sb.buf, '\n', sb.len)) == NULL ||
	    (upload = strchr(key + 1, '\n')) == NULL ||
	    (end = strchr(upload + 1, '\n')) == NULL) {
		log_warn("spool: 'mpu/%s' is not a multipart record; removed",
		    id);
		unlinkat(sp->mpufd, id, 0);
		goto out;
	}
	*key++ = '\0';
	*upload++ = '\0';
	*end = '\0';
	rc = fn(arg, id, sb.buf, key, upload);
 out:
	strbuf_release(&sb);
	return rc;
}

int
spool_mpu_each(struct spool *sp, spool_mpu_fn fn, void *arg,
    struct errbuf *eb)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if ((fd = dup(sp->mpufd)) == -1 || (d = fdopendir(fd)) == NULL) {
		errbuf_setsys(eb, ERR_IO, "spool: read 'mpu'");
		if (fd != -1)
			close(fd);
		return -1;
	}
	rewinddir(d);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			/* a record killed before its rename */
			if (strcmp(de->d_name, ".") != 0 &&
			    strcmp(de->d_name, "..") != 0)
				unlinkat(sp->mpufd, de->d_name, 0);
			continue;
		}
		rc = spool_mpu_read(sp, de->d_name, fn, arg);
	}
	closedir(d);
	if (rc == -1)
		errbuf_set(eb, ERR_REMOTE, "spool: multipart uploads are left "
		    "to abort");
	return rc;
}

int
spool_mark_success(struct spool *sp, time_t when, struct errbuf *eb)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%lld\n", (long long)when);

	return spool_write_file(sp->dirfd, "last-success", buf, (size_t)n, eb);
}

time_t
spool_last_success(const char *dir)
{
	struct strbuf sb = STRBUF_INIT;
	char *path = xasprintf("%s/last-success", dir);
	time_t t = 0;

	if (strbuf_read_file(&sb, path, 64) == 0)
		t = (time_t)strtoll(sb.buf, NULL, 10);
	strbuf_release(&sb);
	free(path);
	return t;
}

/* ---- --status: a read-only look, no lock ---- */

static void
status_note(struct spool_status *st, time_t t)
{
	if (t != 0 && (st->oldest == 0 || t < st->oldest))
		st->oldest = t;
}

/* 1 and *sz, *mt when dirfd/name is a regular file. */
static int
status_file(int dirfd, const char *name, unsigned long long *sz, time_t *mt)
{
	struct stat sb;

	if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(sb.st_mode))
		return 0;
	*sz = (unsigned long long)sb.st_size;
	if (*mt == 0 || sb.st_mtime < *mt)
		*mt = sb.st_mtime;
	return 1;
}

static void
status_batch(int bfd, struct spool_item *it, struct spool_status *st)
{
	it->has_archive = status_file(bfd, "archive.tar", &it->archive_bytes,
	    &it->mtime);
	it->has_manifest = status_file(bfd, "manifest.json",
	    &it->manifest_bytes, &it->mtime);
	st->batches++;
	if (it->has_archive) {
		st->archives++;
		st->archive_bytes += it->archive_bytes;
	}
	if (it->has_manifest) {
		st->manifests++;
		st->manifest_bytes += it->manifest_bytes;
	}
}

static void
status_mpu(const char *dir, struct spool_item *it, struct strbuf *sb)
{
	char *path = xasprintf("%s/mpu/%s", dir, it->name), *nl, *key;

	strbuf_reset(sb);
	if (strbuf_read_file(sb, path, 64 * 1024) == 0 &&
	    (nl = memchr(sb->buf, '\n', sb->len)) != NULL &&
	    strchr(nl + 1, '\n') != NULL) {
		*nl = '\0';
		key = nl + 1;
		*strchr(key, '\n') = '\0';
		it->bucket = sb->buf;
		it->key = key;
	}
	free(path);
}

/* Every entry of dir/sub (not dot files) as an item of kind. */
static int
status_dir(const char *dir, int dirfd, const char *sub,
    enum spool_item_kind kind, struct spool_status *st, spool_item_fn fn,
    void *arg, struct errbuf *eb)
{
	struct strbuf sb = STRBUF_INIT;
	struct spool_item it;
	struct dirent *de;
	struct stat sbuf;
	DIR *d = NULL;
	int fd, efd;

	fd = openat(dirfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1 && errno == ENOENT)
		return 0;
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		errbuf_setsys(eb, ERR_IO, "spool: read '%s/%s'", dir, sub);
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || fstatat(fd, de->d_name, &sbuf,
		    AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		memset(&it, 0, sizeof(it));
		it.kind = kind;
		it.name = de->d_name;
		it.mtime = sbuf.st_mtime;
		if (kind == SPOOL_ITEM_BATCH) {
			if (!S_ISDIR(sbuf.st_mode) || (efd = openat(fd,
			    de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC)) == -1)
				continue;
			status_batch(efd, &it, st);
			close(efd);
		} else if (kind == SPOOL_ITEM_MPU) {
			if (!S_ISREG(sbuf.st_mode))
				continue;
			status_mpu(dir, &it, &sb);
			st->mpus++;
		}
		status_note(st, it.mtime);
		if (fn != NULL)
			fn(arg, &it);
	}
	closedir(d);
	strbuf_release(&sb);
	return 0;
}

/* The unsealed work.* directories at the top of the spool. */
static int
status_staging(const char *dir, int dirfd, struct spool_status *st,
    spool_item_fn fn, void *arg, struct errbuf *eb)
{
	struct spool_item it;
	struct dirent *de;
	struct stat sbuf;
	DIR *d;
	int fd;

	if ((fd = dup(dirfd)) == -1 || (d = fdopendir(fd)) == NULL) {
		errbuf_setsys(eb, ERR_IO, "spool: read '%s'", dir);
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "work.", 5) != 0 ||
		    fstatat(dirfd, de->d_name, &sbuf, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISDIR(sbuf.st_mode))
			continue;
		memset(&it, 0, sizeof(it));
		it.kind = SPOOL_ITEM_STAGING;
		it.name = de->d_name;
		it.mtime = sbuf.st_mtime;
		st->staging++;
		if (fn != NULL)
			fn(arg, &it);
	}
	closedir(d);
	return 0;
}

int
spool_status_read(const char *dir, struct spool_status *st,
    spool_item_fn fn, void *arg, struct errbuf *eb)
{
	int dirfd, rc = -1;

	memset(st, 0, sizeof(*st));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd == -1 && errno == ENOENT)
		return 0;
	if (dirfd == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: open '%s'", dir);
		return -1;
	}
	st->exists = 1;
	if (status_dir(dir, dirfd, "batches", SPOOL_ITEM_BATCH, st, fn, arg,
	    eb) == -1 ||
	    status_dir(dir, dirfd, "mpu", SPOOL_ITEM_MPU, st, fn, arg,
	    eb) == -1 ||
	    status_staging(dir, dirfd, st, fn, arg, eb) == -1)
		goto out;
	st->last_success = spool_last_success(dir);
	rc = 0;
 out:
	close(dirfd);
	return rc;
}
