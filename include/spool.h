/*
 * spool: the single record of work in flight, one directory per tool
 * (S3BATCH_SPOOL_DIR/<tool>, mode 0700, files 0600), held under a run
 * lock. Everything written here is fsync'd, with its directory, before the
 * run acts on it, so a run killed at any instruction leaves a spool the
 * next run can finish.
 *
 *   lock            flock(2) held for the whole run
 *   mpu/<id>        a multipart upload started and not yet completed or
 *                   aborted: "bucket\nkey\nupload-id\n"
 *   last-success    touched at the end of a run that left no work
 */
#ifndef S3B_SPOOL_H
#define S3B_SPOOL_H

#include <time.h>

#include "errbuf.h"

struct spool;

/*
 * Create the spool directory if needed and take the run lock without
 * waiting. Returns NULL with eb: ERR_LOCKED when another run holds it,
 * ERR_IO when the directory cannot be made or written.
 */
struct spool *spool_open(const char *dir, struct errbuf *eb);

/* Release the lock and free. NULL-safe. */
void	spool_close(struct spool *sp);

const char *spool_dir(const struct spool *sp);
int	spool_dirfd(const struct spool *sp);

/*
 * Record a multipart upload before any part is sent. *id receives a new
 * string naming the record (caller frees). 0, or -1 with eb.
 */
int	spool_mpu_record(struct spool *sp, const char *bucket, const char *key,
	    const char *upload_id, char **id, struct errbuf *eb);

/* Forget a record once the upload completed or was aborted. */
int	spool_mpu_forget(struct spool *sp, const char *id, struct errbuf *eb);

typedef int (*spool_mpu_fn)(void *arg, const char *id, const char *bucket,
	    const char *key, const char *upload_id);

/*
 * Call fn for every recorded multipart upload; fn returning -1 stops the
 * walk. Unreadable records are reported and skipped. 0, or -1 with eb.
 */
int	spool_mpu_each(struct spool *sp, spool_mpu_fn fn, void *arg,
	    struct errbuf *eb);

/* Note a run that left nothing behind; read it back (0 when never). */
int	spool_mark_success(struct spool *sp, time_t when, struct errbuf *eb);
time_t	spool_last_success(const char *dir);

/*
 * Write a file in the spool durably: to a temporary name, fsync, rename,
 * fsync the directory. Relative to dirfd. 0, or -1 with eb.
 */
int	spool_write_file(int dirfd, const char *name, const void *data,
	    size_t len, struct errbuf *eb);

/* fsync a directory by descriptor. 0, or -1 with eb. */
int	spool_fsync_dir(int dirfd, const char *what, struct errbuf *eb);

/*
 * --status: what waits in a spool directory (dir as cfg->spool_dir),
 * read without the lock and without changing anything, so it can run
 * beside a run. The layout is batch.h's: batches/<uuid>/ (archive.tar,
 * manifest.json), mpu/<id>, work.XXXXXX/.
 */
enum spool_item_kind {
	SPOOL_ITEM_BATCH,	/* a sealed batch */
	SPOOL_ITEM_MPU,		/* a multipart upload to abort */
	SPOOL_ITEM_STAGING,	/* an unsealed work.* directory */
};

/* One thing that waits; strings valid during the callback only. */
struct spool_item {
	enum spool_item_kind	 kind;
	const char		*name;	/* uuid, record id, work.XXXXXX */
	time_t			 mtime;	/* oldest of the item's files */
	int			 has_archive, has_manifest;	/* batch */
	unsigned long long	 archive_bytes, manifest_bytes;	/* batch */
	const char		*bucket, *key;	/* mpu; NULL if unreadable */
};

struct spool_status {
	int			 exists;	/* 0: no spool directory yet */
	size_t			 batches, archives, manifests, mpus, staging;
	unsigned long long	 archive_bytes, manifest_bytes;
	time_t			 oldest;	/* 0: nothing waits */
	time_t			 last_success;	/* 0: never */
};

typedef void (*spool_item_fn)(void *arg, const struct spool_item *it);

/*
 * Fill *st for dir and call fn (may be NULL) for every item. A missing
 * dir is not an error (st->exists = 0). 0, or -1 with eb (ERR_IO) when
 * the spool cannot be read.
 */
int	spool_status_read(const char *dir, struct spool_status *st,
	    spool_item_fn fn, void *arg, struct errbuf *eb);

#endif
