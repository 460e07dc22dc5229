/*
 * batch: sealed batches in the spool.
 *
 *   work.XXXXXX/<uuid>/     a batch being built (mkdtemp: unsealed)
 *   batches/<uuid>/         a sealed batch: manifest.json, and archive.tar
 *                           for s3-batch
 *
 * Sealing writes and fsyncs the archive and the manifest, fsyncs the
 * batch's directory, renames it into batches/ and fsyncs both parents.
 * Only a sealed batch lets a run unlink originals; recovery deletes what is
 * left in work.* and finishes every sealed batch.
 */
#ifndef S3B_BATCH_H
#define S3B_BATCH_H

#include "errbuf.h"

struct spool;
struct manifest;

/* A fresh staging directory work.XXXXXX; its descriptor. -1 with eb. */
int	batch_stage_open(struct spool *sp, char **name, struct errbuf *eb);

/* Make <uuid>/ in the staging directory; its descriptor. -1 with eb. */
int	batch_stage_dir(int workfd, const char *id, struct errbuf *eb);

/*
 * Seal: write manifest.json in the batch directory (archive.tar, if any,
 * must be written and fsync'd by the caller), fsync it, move it into
 * batches/. 0, or -1 with eb (the batch stays unsealed).
 */
int	batch_seal(struct spool *sp, int workfd, int batchfd,
	    const struct manifest *m, struct errbuf *eb);

/* Remove the staging directory of this run (empty once all is sealed). */
void	batch_stage_close(struct spool *sp, int workfd, const char *name);

/* Recovery: delete every work.* directory an earlier run left. */
int	batch_clean_work(struct spool *sp, struct errbuf *eb);

typedef int (*batch_fn)(void *arg, const char *id);

/* Call fn for every sealed batch (oldest name order). 0, or -1 (eb). */
int	batch_each(struct spool *sp, batch_fn fn, void *arg, struct errbuf *eb);

/* Read a sealed batch's manifest. 0, or -1 with eb. */
int	batch_load(struct spool *sp, const char *id, struct manifest *m,
	    struct errbuf *eb);

/* Open a sealed batch's archive for reading; size in *size. -1 with eb. */
int	batch_open_archive(struct spool *sp, const char *id, off_t *size,
	    struct errbuf *eb);

/* Delete a delivered batch. 0, or -1 with eb. */
int	batch_clear(struct spool *sp, const char *id, struct errbuf *eb);

#endif
