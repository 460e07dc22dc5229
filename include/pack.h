/*
 * pack: one run of s3-batch. Recover; select; group the files by (bucket,
 * directory) and pack each group into tar archives of at most
 * MAX_BATCH_SIZE_MB; seal each archive with its manifest in the spool and
 * only then unlink its originals; upload the archives; deliver the
 * manifests; clear the spool.
 */
#ifndef S3B_PACK_H
#define S3B_PACK_H

#include "errbuf.h"

struct run;

/* As sync_run(): 0 when the run went through, -1 (eb) when it could not. */
int	pack_run(struct run *r, struct errbuf *eb);

#endif
