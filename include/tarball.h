/*
 * tarball: one uncompressed pax tar archive written to an open file, built
 * from regular files read through open descriptors (libarchive underneath;
 * the name keeps clear of libarchive's archive_* namespace).
 *
 * Format: restricted pax, which is a plain ustar header unless an entry
 * needs a pax extended header (name over 100 bytes or not ASCII, size of
 * 8 GiB or more, mtime before 1970 or after 2038, uid/gid of 2^18 or more).
 * Every entry is a regular file with its own data, never a hardlink entry.
 * Kept per entry: the name as raw bytes (a name with a byte >= 0x80 is
 * stored as pax "path" with hdrcharset=BINARY, so no reader converts it
 * and the result does not depend on the process locale), the permission
 * bits (st_mode & 0777: no setuid, setgid or sticky bit), the numeric uid
 * and gid (no user or group names), and the mtime in whole seconds (a
 * sub-second part would cost a pax header on every entry).
 *
 * Output is not blocked: the archive is exactly the sum of its entries
 * (tarball_entry_size) plus tarball_end_size(), with no padding to 10 KiB
 * records, so a packer can keep an archive within a byte limit.
 */
#ifndef S3B_TARBALL_H
#define S3B_TARBALL_H

#include <sys/stat.h>

#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

struct tarball;

/*
 * Start an archive at out_fd's current offset (normally a new, empty file
 * in the spool). out_fd must be writable, seekable and not O_APPEND: the
 * archive is written with pwrite(2), out_fd's offset is left as it was, and
 * the caller keeps the descriptor (tarball never fsyncs or closes it).
 * Returns NULL with eb set when out_fd is unsuitable. Free with
 * tarball_free. Allocation failure aborts, as in strbuf.
 */
struct tarball	*tarball_new(int out_fd, struct errbuf *eb);

/*
 * Exact number of bytes that tarball_add(name, name_len, st) adds to an
 * archive: header (with the pax extended header when one is needed), data
 * and padding to 512 bytes. Measured by letting libarchive format the
 * header, so it cannot drift from what is written. UINT64_MAX for a name
 * that tarball_add refuses.
 */
uint64_t	tarball_entry_size(const char *name, size_t name_len,
		    const struct stat *st);

/* Bytes that tarball_finish adds: the end-of-archive marker (1024). */
uint64_t	tarball_end_size(void);

/* Bytes of archive so far, buffered ones included; after tarball_finish,
 * the size of the whole archive file. */
uint64_t	tarball_size(const struct tarball *t);

/*
 * Add in_fd's file as the entry name (name_len raw bytes, no NUL; relative:
 * not absolute, no ".." component, no trailing '/'). st is the caller's
 * lstat/fstat of that file: it gives the size, mode, uid, gid and mtime
 * written, and the identity the file must keep. The data is read once with
 * pread from offset 0, st->st_size bytes, through one buffer that feeds both
 * SHA-256 and the archive.
 * Returns 0 on success, with *data_offset (where the file's bytes start in
 * the archive: a Range GET of st_size bytes from there returns the file)
 * and sha256 (of those bytes) set.
 * Returns 1 when the file is not the one st describes or changed while it
 * was read (dev/ino, size, mtime or ctime differ before or after, or it
 * holds fewer or more than st_size bytes): the entry is taken out again,
 * the archive is back to its size before the call, and the caller may go
 * on adding. Out-parameters are not set.
 * Returns -1 with eb set on a refused name or st (ERR_INTERNAL), a read
 * error on in_fd (ERR_IO), or a write error on the archive (ERR_IO,
 * ERR_NOSPACE when the file system is full). Messages name neither file:
 * the caller prefixes its paths. After -1, other than for a refused name
 * or st, the archive is unusable: only tarball_free.
 */
int		tarball_add(struct tarball *t, const char *name,
		    size_t name_len, int in_fd, const struct stat *st,
		    uint64_t *data_offset, unsigned char sha256[32],
		    struct errbuf *eb);

/*
 * Write the end-of-archive marker and everything still buffered. Does not
 * fsync or close out_fd. Returns 0, or -1 with eb set (ERR_IO,
 * ERR_NOSPACE). No tarball_add afterwards.
 */
int		tarball_finish(struct tarball *t, struct errbuf *eb);

/* Free t (NULL is allowed). Whatever was not finished is left as written:
 * the caller deletes an unfinished archive file. */
void		tarball_free(struct tarball *t);

#endif
