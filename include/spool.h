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

#endif
