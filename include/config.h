/*
 * config: every setting of both tools, read from the environment once at
 * start. A bad or missing value fails with ERR_CONFIG and one line naming
 * the variable, before anything is touched.
 */
#ifndef S3B_CONFIG_H
#define S3B_CONFIG_H

#include <stdint.h>

#include "errbuf.h"

enum tool_kind { TOOL_BATCH, TOOL_SYNC };

enum addressing { ADDR_AUTO, ADDR_PATH, ADDR_VIRTUAL };

struct config {
	enum tool_kind	 tool;
	const char	*tool_name;	/* "s3-batch" or "s3-sync" */
	char		*root;		/* the bucket folders */
	char		*spool_dir;	/* this tool's spool: <S3BATCH_SPOOL_DIR>/<tool> */

	/* S3 */
	char		*region;
	char		*endpoint;	/* NULL = AWS's regional endpoint */
	enum addressing	 addressing;
	char		*ca_bundle;	/* AWS_CA_BUNDLE */
	int		 max_attempts;	/* AWS_MAX_ATTEMPTS */
	int		 concurrency;
	uint64_t	 multipart_threshold;	/* bytes */
	uint64_t	 part_size;		/* bytes */
	char		*storage_class;
	char		*sse;		/* AES256 or aws:kms */
	char		*sse_kms_key_id;

	/* selection and bounds */
	long		 settle_seconds;	/* -1: default (0, or 60 without /proc) */
	char		*ignore;		/* colon-separated globs */
	uint64_t	 max_batch_bytes;	/* s3-batch archive limit */
	long		 max_run_seconds;	/* 0 = none */
	uint64_t	 max_run_bytes;		/* 0 = none */

	/* manifests */
	char		*es_host;
	int		 es_port;
	char		*es_scheme;
	char		*es_index;
	char		*es_username;
	char		*es_password;
	char		*es_api_key;
	char		*es_ca_bundle;
	char		*fallback_bucket;
	char		*fallback_prefix;	/* key prefix in the fallback bucket */

	/* logging */
	char		*rsyslog_host;
	int		 rsyslog_port;
	int		 rsyslog_tcp;
};

/* Defaults a man page and the README must repeat (tests check they do). */
#define CONFIG_DEFAULT_CONCURRENCY	16
#define CONFIG_DEFAULT_MULTIPART_MB	64
#define CONFIG_DEFAULT_PART_MB		16
#define CONFIG_DEFAULT_BATCH_MB		1024
#define CONFIG_DEFAULT_MAX_ATTEMPTS	5
#define CONFIG_DEFAULT_IGNORE		"*.filepart:.pureftpd-upload.*:.in.*.:.*.??????"

/*
 * Read the configuration of tool from the environment through getenv_fn
 * (getenv in the tools, a table in tests). For --dry-run, need_remote = 0
 * skips the variables only a real run needs. Fills *cfg, which the caller
 * releases with config_release(). Returns 0, or -1 with eb (ERR_CONFIG).
 */
int	config_load(struct config *cfg, enum tool_kind tool,
	    const char *(*getenv_fn)(const char *), int need_remote,
	    struct errbuf *eb);
void	config_release(struct config *cfg);

#endif
