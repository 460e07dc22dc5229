/*
 * sync: one run of s3-sync. Recover, select, then upload each file as it
 * is to s3://<bucket>/<key>, many at once, and unlink each original once
 * S3 confirmed its upload and the file is unchanged.
 */
#ifndef S3B_SYNC_H
#define S3B_SYNC_H

#include "errbuf.h"

struct run;

/*
 * 0 when the run went through (r->stats and r->first_error tell whether
 * work is left); -1 with eb when it could not (spool, walk).
 */
int	sync_run(struct run *r, struct errbuf *eb);

#endif
