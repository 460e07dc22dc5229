#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "log.h"
#include "manifest.h"
#include "spool.h"
#include "strbuf.h"

#define BATCHES	"batches"

static int
batches_fd(struct spool *sp, struct errbuf *eb)
{
	int fd;

	if (mkdirat(spool_dirfd(sp), BATCHES, 0700) == -1 && errno != EEXIST) {
		errbuf_setsys(eb, ERR_IO, "spool: mkdir '%s/%s'", spool_dir(sp),
		    BATCHES);
		return -1;
	}
	fd = openat(spool_dirfd(sp), BATCHES, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		errbuf_setsys(eb, ERR_IO, "spool: open '%s/%s'", spool_dir(sp),
		    BATCHES);
	return fd;
}

int
batch_stage_open(struct spool *sp, char **name, struct errbuf *eb)
{
	char *path = xasprintf("%s/work.XXXXXX", spool_dir(sp));
	int fd = -1;

	if (mkdtemp(path) == NULL) {
		errbuf_setsys(eb, ERR_IO, "spool: mkdtemp '%s'", path);
		goto out;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: open '%s'", path);
		goto out;
	}
	*name = xstrdup(strrchr(path, '/') + 1);
 out:
	free(path);
	return fd;
}

int
batch_stage_dir(int workfd, const char *id, struct errbuf *eb)
{
	int fd;

	if (mkdirat(workfd, id, 0700) == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: mkdir '%s'", id);
		return -1;
	}
	fd = openat(workfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		errbuf_setsys(eb, ERR_IO, "spool: open '%s'", id);
	return fd;
}

int
batch_seal(struct spool *sp, int workfd, int batchfd,
    const struct manifest *m, struct errbuf *eb)
{
	struct strbuf json = STRBUF_INIT;
	int bfd = -1, rc = -1;

	manifest_to_json(m, &json);
	if (spool_write_file(batchfd, "manifest.json", json.buf, json.len,
	    eb) == -1) {
		errbuf_prefix(eb, "sealing a batch in '%s'", spool_dir(sp));
		goto out;
	}
	if ((bfd = batches_fd(sp, eb)) == -1)
		goto out;
	if (renameat(workfd, m->id, bfd, m->id) == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: rename batch '%s'", m->id);
		goto out;
	}
	if (spool_fsync_dir(bfd, BATCHES, eb) == -1 ||
	    spool_fsync_dir(workfd, "work", eb) == -1)
		goto out;
	rc = 0;
 out:
	if (bfd != -1)
		close(bfd);
	strbuf_release(&json);
	return rc;
}

/* rm -r of a directory that holds only files and directories of ours. */
static int
remove_tree(int parentfd, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd == -1)
		return unlinkat(parentfd, name, 0);
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, de->d_name, 0) == -1 &&
		    (errno != EISDIR || remove_tree(fd, de->d_name) == -1))
			rc = -1;
	}
	closedir(d);
	if (unlinkat(parentfd, name, AT_REMOVEDIR) == -1)
		rc = -1;
	return rc;
}

void
batch_stage_close(struct spool *sp, int workfd, const char *name)
{
	if (workfd != -1)
		close(workfd);
	if (name != NULL && remove_tree(spool_dirfd(sp), name) == -1)
		log_warn("spool: cannot remove '%s/%s': %s", spool_dir(sp),
		    name, strerror(errno));
}

int
batch_clean_work(struct spool *sp, struct errbuf *eb)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if ((fd = openat(spool_dirfd(sp), ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 || (d = fdopendir(fd)) == NULL) {
		errbuf_setsys(eb, ERR_IO, "spool: read '%s'", spool_dir(sp));
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "work.", 5) != 0)
			continue;
		log_info("recovery: removing the unsealed staging directory "
		    "'%s'", de->d_name);
		if (remove_tree(spool_dirfd(sp), de->d_name) == -1) {
			errbuf_setsys(eb, ERR_IO, "spool: remove '%s/%s'",
			    spool_dir(sp), de->d_name);
			rc = -1;
		}
	}
	closedir(d);
	if (rc == 0)
		rc = spool_fsync_dir(spool_dirfd(sp), spool_dir(sp), eb);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
batch_each(struct spool *sp, batch_fn fn, void *arg, struct errbuf *eb)
{
	char **names = NULL;
	size_t n = 0, alloc = 0, i;
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	if ((fd = batches_fd(sp, eb)) == -1)
		return -1;
	if ((d = fdopendir(fd)) == NULL) {
		errbuf_setsys(eb, ERR_IO, "spool: read '%s'", BATCHES);
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 16;
			names = xrealloc(names, alloc * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n && rc == 0; i++)
		rc = fn(arg, names[i]);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc == -1)
		errbuf_set(eb, ERR_INTERNAL, "spool: batches left unfinished");
	return rc;
}

int
batch_load(struct spool *sp, const char *id, struct manifest *m,
    struct errbuf *eb)
{
	struct strbuf sb = STRBUF_INIT;
	char *path = xasprintf("%s/%s/%s/manifest.json", spool_dir(sp),
	    BATCHES, id);
	int rc = -1;

	if (strbuf_read_file(&sb, path, 1024 * 1024 * 1024) == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: read '%s'", path);
		goto out;
	}
	if (manifest_from_json(m, sb.buf, sb.len, eb) == -1) {
		errbuf_prefix(eb, "spool: '%s'", path);
		goto out;
	}
	rc = 0;
 out:
	strbuf_release(&sb);
	free(path);
	return rc;
}

int
batch_open_archive(struct spool *sp, const char *id, off_t *size,
    struct errbuf *eb)
{
	char *path = xasprintf("%s/%s/%s/archive.tar", spool_dir(sp), BATCHES,
	    id);
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 || fstat(fd, &st) == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: open '%s'", path);
		if (fd != -1)
			close(fd);
		fd = -1;
	} else
		*size = st.st_size;
	free(path);
	return fd;
}

int
batch_clear(struct spool *sp, const char *id, struct errbuf *eb)
{
	char *gone = xasprintf("work.cleared-%s", id);
	int bfd, rc = -1;

	if ((bfd = batches_fd(sp, eb)) == -1)
		goto out;
	/* one rename ends the batch; a crash after it leaves only work.* */
	if (renameat(bfd, id, spool_dirfd(sp), gone) == -1) {
		errbuf_setsys(eb, ERR_IO, "spool: clear batch '%s'", id);
		goto out;
	}
	if (spool_fsync_dir(bfd, BATCHES, eb) == -1)
		goto out;
	if (remove_tree(spool_dirfd(sp), gone) == -1)
		log_warn("spool: cannot remove '%s/%s': %s", spool_dir(sp),
		    gone, strerror(errno));
	rc = 0;
 out:
	if (bfd != -1)
		close(bfd);
	free(gone);
	return rc;
}
