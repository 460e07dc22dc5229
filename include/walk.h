/*
 * walk: the snapshot of the candidate files under a root, taken without
 * ever following a symbolic link (SPEC "Which files a run takes").
 *
 * Layout: <root>/<bucket>/<key...>. Every directory is opened with openat()
 * relative to its parent's descriptor and O_NOFOLLOW, entries are looked at
 * with fstatat(AT_SYMLINK_NOFOLLOW), and only regular files are kept. Each
 * directory that holds a kept file stays open until walk_free(), and the
 * later stages open and unlink files only through that descriptor, so
 * swapping a directory for a symlink after the walk cannot lead a root run
 * outside the tree: the held descriptor still names the original directory.
 *
 * Left in place, each with one log_warn line naming it (names escaped with
 * name_escape()): anything directly under the root that is not a directory
 * (it is in no bucket); a bucket folder whose name is not a valid bucket
 * name; a symlink, FIFO, socket or device; a directory or file whose name
 * is not UTF-8; a file whose key would be over 1024 bytes. A skipped folder
 * gets one line for its whole subtree, with the number of files it holds
 * (log_info instead of log_warn when it holds none, so an empty lost+found
 * does not mail cron every run). Files that vanish during the walk are
 * passed over quietly.
 *
 * Descriptors: walk_open() raises the RLIMIT_NOFILE soft limit to the hard
 * limit (process-wide). The walk holds at most (limit - reserve) directory
 * descriptors, reserve = min(1024, limit / 2), leaving the rest to later
 * stages. When more directories hold files than that, the walk stops at that
 * point and says so (log_warn, result->truncated = 1): the files not taken
 * stay for the next run, like a run that hits its bounds.
 *
 * Threads: after walk_run(), walk_dir_get(), walk_openat() and
 * walk_unlink_if_same() only read the walk and may be called from several
 * threads at once (on different entries).
 */
#ifndef S3B_WALK_H
#define S3B_WALK_H

#include <stddef.h>
#include <sys/stat.h>

#include "errbuf.h"

struct walk;

struct walk_opts {
	/*
	 * 1: a file's own name (the last key component) need not be UTF-8,
	 * for s3-batch, where it becomes a tar entry name and never an S3 key
	 * by itself; folder names must still be UTF-8. 0 (s3-sync): the whole
	 * key must be UTF-8.
	 */
	int	raw_names;
	/*
	 * Bytes a directory's key prefix must leave free below S3's 1024 for
	 * an object named after it: s3-batch puts "<prefix>/<uuid>.tar" in
	 * the bucket, so it passes 41 ("/" + 36 + ".tar"). A deeper folder is
	 * skipped with a warning. 0: no such room needed.
	 */
	size_t	prefix_room;
};

/* A directory that holds at least one kept file. */
struct walk_dir {
	int		 fd;		/* held open until walk_free() */
	const char	*bucket;	/* the bucket folder's name */
	/* Key prefix below the bucket, no trailing '/'; "" at the top. */
	const char	*prefix;
	size_t		 prefix_len;
};

/* A kept regular file. Strings are NUL-terminated and owned by the walk. */
struct walk_entry {
	const char	*bucket;	/* same string as its walk_dir's */
	const char	*key;		/* "<prefix>/<name>" or "<name>" */
	const char	*name;		/* name in its directory: key's tail */
	size_t		 key_len;
	size_t		 dir;		/* index for walk_dir_get() */
	struct stat	 st;		/* fstatat(AT_SYMLINK_NOFOLLOW) */
};

/*
 * What walk_run() found. The entries array is owned by the walk and stays
 * valid until walk_free(); filter_apply() may reorder and shorten it.
 * Entries are grouped by directory (all files of one directory are
 * adjacent, sorted by name), directories in depth-first order, buckets in
 * name order: the order is deterministic for a given tree. Keys are raw
 * bytes: UTF-8 unless walk_opts.raw_names let a file name through.
 */
struct walk_result {
	struct walk_entry *entries;
	size_t		 n;
	size_t		 ndirs;		/* held: walk_dir_get(0 .. ndirs-1) */
	size_t		 skipped;	/* names left in place and logged */
	int		 truncated;	/* 1: stopped early, out of fds */
};

/*
 * Open the root for a walk: O_DIRECTORY | O_NOFOLLOW, so the root itself
 * must be the real directory, not a symlink to it. Raises RLIMIT_NOFILE
 * (see above). opts may be NULL (all zero). Returns NULL and fills eb
 * (ERR_IO) when the root cannot be opened. Free with walk_free().
 */
struct walk	*walk_open(const char *root, const struct walk_opts *opts,
		    struct errbuf *eb);

/*
 * Walk the tree once and fill *out (see struct walk_result). A second call
 * is an ERR_INTERNAL error. Returns 0, or -1 with eb filled (ERR_IO) when
 * the root cannot be read or the system runs out of descriptors or kernel
 * memory (EMFILE, ENFILE, ENOMEM) while walking; then *out is not touched.
 * Other errors under the root (a folder that cannot be opened or read, a
 * name that cannot be stat'ed) are warnings: those files stay for a later
 * run.
 */
int	walk_run(struct walk *w, struct walk_result *out, struct errbuf *eb);

/* The directory with index i (from walk_entry.dir); NULL when out of range. */
const struct walk_dir *walk_dir_get(const struct walk *w, size_t i);

/* The root as given to walk_open(), for messages. */
const char	*walk_root(const struct walk *w);

/*
 * Open the entry for reading through its held directory descriptor:
 * O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC (O_NONBLOCK so a
 * name swapped for a FIFO cannot block; it has no effect on a regular file).
 * Then fstat() and check that it is a regular file with the snapshot's
 * st_dev and st_ino. Returns the descriptor (the caller closes it), or -1
 * with eb filled: ERR_IO, sys_errno ENOENT when the name is gone,
 * ESTALE when the name now holds another file or a non-regular file.
 * If st is not NULL, it receives the fstat() of the open file on success.
 */
int	walk_openat(const struct walk *w, const struct walk_entry *e,
	    struct stat *st, struct errbuf *eb);

/*
 * Unlink the entry's name through its held directory descriptor, if it is
 * still the file of the snapshot: fstatat(AT_SYMLINK_NOFOLLOW) and
 * walk_identity_same(&e->st, now), then unlinkat(). Returns 0 when
 * unlinked; 1 when the name is gone or holds something else (left alone:
 * not an error, the caller decides whether to say so); -1 with eb filled
 * (ERR_IO) when stat or unlink fail otherwise. The check and the unlink are
 * two system calls (Linux has no unlink-if-inode): a file renamed over the
 * name in the microseconds between them would be unlinked untaken. The held
 * descriptor keeps the unlink inside the tree whatever happens to paths.
 */
int	walk_unlink_if_same(const struct walk *w, const struct walk_entry *e,
	    struct errbuf *eb);

/*
 * 1 when now (a fresh stat) is still the file snap (the snapshot) was:
 * same st_dev, st_ino, st_size, st_mtim and st_ctim to the nanosecond, a
 * regular file. One exception for hard links: when snap->st_nlink > 1 and
 * now->st_nlink is smaller, a different ctime is accepted, because
 * unlinking one of the file's other names (as the run itself does after
 * taking each name) changes ctime; content changes still show in mtime.
 * Not symmetric: pass the older stat first. Else 0.
 */
int	walk_identity_same(const struct stat *snap, const struct stat *now);

/*
 * Recovery's unlink, with no walk at hand: resolve <root>/<bucket>/<path>
 * one directory at a time with O_NOFOLLOW (a symlink anywhere on the way
 * stops it), then unlink the file if walk_identity_same(snap, now). Returns
 * as walk_unlink_if_same(): 0 unlinked, 1 gone or changed, -1 (eb).
 */
int	walk_unlink_path(const char *root, const char *bucket, const char *path,
	    size_t path_len, const struct stat *snap, struct errbuf *eb);

/* Close every held descriptor and free the walk and its entries. NULL-safe. */
void	walk_free(struct walk *w);

#endif
