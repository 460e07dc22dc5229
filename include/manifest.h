/*
 * manifest: what a sealed batch holds, as kept in the spool
 * (batches/<uuid>/manifest.json), and the documents made from it: one
 * ElasticSearch document per original file, and the fallback JSON object.
 *
 * A batch is one tar archive and its files (s3-batch), or a group of
 * objects uploaded as they are (s3-sync: no archive, each entry is its own
 * object). @timestamp, host and run id are fixed when the batch is sealed.
 */
#ifndef S3B_MANIFEST_H
#define S3B_MANIFEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "errbuf.h"
#include "strbuf.h"

struct manifest_entry {
	char		*bucket;
	char		*path;		/* original key below the bucket: raw bytes */
	size_t		 path_len;
	char		*object_key;	/* the archive's key, or the object's own */
	char		*entry;		/* name in the tar (raw), or == path */
	size_t		 entry_len;
	char		*url;		/* url.full */
	uint64_t	 size;
	int64_t		 mtime;		/* seconds */
	unsigned char	 sha256[32];
	uint64_t	 data_offset;
	/* the original's identity, to unlink it after a crash */
	uint64_t	 dev, ino;
	int64_t		 mtime_ns, ctime_ns;
	uint64_t	 nlink;
};

struct manifest {
	char		 id[37];	/* batch uuid */
	char		 run_id[37];
	const char	*tool;		/* "s3-batch" or "s3-sync" */
	char		*host;
	time_t		 sealed_at;
	char		*archive_bucket;	/* NULL for s3-sync */
	char		*archive_key;
	uint64_t	 archive_size;
	struct manifest_entry *e;
	size_t		 n, alloc;
};

/* An empty manifest with a new batch uuid. Release with manifest_release. */
void	manifest_init(struct manifest *m, const char *tool, const char *run_id,
	    const char *host, time_t sealed_at);
void	manifest_release(struct manifest *m);

/* Append an entry; strings are copied. Returns the new entry. */
struct manifest_entry *manifest_add(struct manifest *m, const char *bucket,
	    const char *path, size_t path_len, const char *entry,
	    size_t entry_len, const struct stat *st);

/* A new uuid string (36 chars + NUL). */
void	manifest_uuid(char out[37]);

/* The spool form (JSON). */
void	manifest_to_json(const struct manifest *m, struct strbuf *out);
int	manifest_from_json(struct manifest *m, const char *json, size_t len,
	    struct errbuf *eb);

/* The ElasticSearch document of entry i (JSON, no newline) and its _id. */
void	manifest_doc(const struct manifest *m, size_t i, struct strbuf *out);
void	manifest_doc_id(const struct manifest *m, size_t i, char hex[65]);

/*
 * The fallback object: {"batch":..., "entries": [doc, ...]} for the
 * entries whose want[i] is nonzero (all when want is NULL), and its key
 * <prefix>/<yyyy>/<mm>/<dd>/<batch uuid>.json.
 */
void	manifest_fallback(const struct manifest *m, const unsigned char *want,
	    struct strbuf *out);
char	*manifest_fallback_key(const struct manifest *m, const char *prefix);

/* ISO-8601 UTC with Z, seconds. */
void	manifest_iso8601(time_t t, char out[32]);

#endif
