/*
 * pack: one run of s3-batch. Recover; select; group the files by (bucket,
 * directory) and pack each group into tar archives of at most
 * MAX_BATCH_SIZE_MB; seal each archive with its manifest in the spool and
 * only then unlink its originals; upload the archives; deliver the
 * manifests; clear the spool.
 */
#ifndef S3B_PACK_H
#define S3B_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"
#include "walk.h"

struct run;

/* The walk options s3-batch runs with (raw file names, room for a key). */
void	pack_walk_opts(struct walk_opts *wo);

/*
 * Files [first, return value) of one directory's run of entries go into
 * one archive of at most max bytes (a single larger file goes alone);
 * *size receives the archive's exact size. Used by the run and --dry-run.
 */
size_t	pack_plan(const struct walk_entry *ents, size_t first, size_t end,
	    uint64_t max, uint64_t *size);

/* As sync_run(): 0 when the run went through, -1 (eb) when it could not. */
int	pack_run(struct run *r, struct errbuf *eb);

#endif
