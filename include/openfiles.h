/*
 * openfiles: which regular files some process holds open right now, read
 * from /proc/<pid>/fd (SPEC "Which files a run takes"). Files are known by
 * (st_dev, st_ino), the same numbers a stat() of the file gives, so a set
 * built here answers "is this walk entry open?" in constant time.
 *
 * Take the scan after the walk: a file opened between the walk and the scan
 * is then still seen. What it cannot see, by design of /proc: files only
 * mapped (mmap) with their descriptor closed; descriptor tables of threads
 * that unshared theirs (CLONE_FILES); processes in other PID namespaces.
 * The settle time covers those.
 */
#ifndef S3B_OPENFILES_H
#define S3B_OPENFILES_H

#include <sys/types.h>

#include "errbuf.h"

struct openfiles;

/*
 * Scan /proc/<pid>/fd of every process but the caller's own, following
 * each descriptor's link with statx(AT_STATX_DONT_SYNC) so a file on a
 * hung network file system cannot block the run, and keeping regular files
 * only. Processes that end during the scan are passed over. Never fails for
 * lack of access: when some process's table or descriptor cannot be read
 * (not root; /proc mounted with hidepid; a process holding capabilities the
 * caller lacks, such as a container's PID 1 when the caller's bounding set
 * is smaller; no /proc at all) the set is returned marked incomplete with
 * the reason (openfiles_complete(), openfiles_why()). Returns NULL with eb
 * filled only when the process runs out of descriptors or memory (ERR_IO).
 * Free with openfiles_free().
 * The library prints nothing; the caller says whether the scan was
 * incomplete (filter_apply() does).
 */
struct openfiles *openfiles_scan(struct errbuf *eb);

/* 1 when a scanned process holds (dev, ino) open, else 0. */
int	openfiles_contains(const struct openfiles *of, dev_t dev, ino_t ino);

/* 1 when every process's descriptor table could be read, else 0. */
int	openfiles_complete(const struct openfiles *of);

/*
 * Why the scan is incomplete, as a short phrase for a message ("the open
 * files of 3 processes (pid 1, ...) cannot be read: not running as root",
 * "/proc hides other users' processes (hidepid)"); "" when complete. Owned
 * by the set.
 */
const char *openfiles_why(const struct openfiles *of);

/* Number of distinct open files found, processes and descriptors read. */
size_t	openfiles_count(const struct openfiles *of);
size_t	openfiles_nprocs(const struct openfiles *of);
size_t	openfiles_nfds(const struct openfiles *of);

/* NULL-safe. */
void	openfiles_free(struct openfiles *of);

#endif
