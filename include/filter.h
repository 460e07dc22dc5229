/*
 * filter: which files of the walk's snapshot a run takes now (SPEC "Which
 * files a run takes"): not a file some process holds open, not one that
 * changed less than the settle time ago, not a name that matches an
 * ignore glob. What is passed over stays where it is for a later run.
 */
#ifndef S3B_FILTER_H
#define S3B_FILTER_H

#include <stddef.h>
#include <time.h>

#include "openfiles.h"
#include "walk.h"

/*
 * Temporary names of common servers and clients: WinSCP (*.filepart),
 * Pure-FTPd (.pureftpd-upload.*), ProFTPD HiddenStores (.in.NAME.) and
 * rsync (.NAME.XXXXXX). The last one also matches any hidden name with a
 * six-character last extension (".notes.backup"): set S3BATCH_IGNORE to
 * take those.
 */
#define FILTER_IGNORE_DEFAULT	"*.filepart:.pureftpd-upload.*:.in.*.:.*.??????"

/* Settle time applied at least when the open-file scan is incomplete. */
#define FILTER_SETTLE_UNSURE	60

struct filter_opts {
	long		 settle_seconds; /* -1: default: 0 when every open
					    file could be seen, else 60 */
	const char	*ignore;	/* colon-separated globs; NULL:
					   FILTER_IGNORE_DEFAULT; "": none */
	time_t		 now;		/* the run's clock, passed in */
};

struct filter_stats {
	size_t	taken;
	size_t	ignored;	/* name matched an ignore glob */
	size_t	open;		/* held open by some process */
	size_t	young;		/* changed within the settle time */
	long	settle;		/* the settle time applied, seconds */
	int	scan_complete;	/* 1: every process's open files were seen */
};

/*
 * Keep in files only the entries a run takes, in their order (the array is
 * compacted in place and files->n lowered; entries passed over are
 * overwritten, so pointers into the array taken before are stale). Each
 * entry is tested in this order and counted once, under the first reason
 * that holds, with one log_info line naming it:
 *  - ignored: its name within its directory matches a glob of o->ignore by
 *    fnmatch(3) with no flags: '*' and '?' match a leading dot too, so
 *    "*.filepart" also catches ".x.filepart" (a temporary name should be
 *    caught whether hidden or not);
 *  - open: of holds its (st_dev, st_ino);
 *  - young: settle > 0 and now - max(mtime, ctime) < settle, the file's
 *    times rounded up to the next whole second.
 * When of is NULL or incomplete, one log_warn says so ("cannot read every
 * process's open files (why); applying a settle time of at least 60 s")
 * and the settle time is raised to at least 60 s. st (may be NULL)
 * receives the counts and the settle time used.
 */
void	filter_apply(struct walk_result *files, const struct filter_opts *o,
	    const struct openfiles *of, struct filter_stats *st);

/*
 * 1 when name (name_len bytes, NUL-terminated) matches one of the
 * colon-separated globs in list (NULL: the default list), else 0; *which
 * (may be NULL) then points to a copy of the glob that matched, owned by
 * the caller (free()).
 */
int	filter_ignored(const char *list, const char *name, char **which);

#endif
