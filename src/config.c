/*
 * config: the environment, read once, checked whole before a run starts.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "strbuf.h"

#define MIB	(1024ULL * 1024ULL)

struct env {
	const char *(*get)(const char *);
	struct errbuf *eb;
};

/* The value of name, or NULL when unset or empty. */
static const char *
env_str(struct env *env, const char *name)
{
	const char *v = env->get(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static char *
env_dup(struct env *env, const char *name, const char *dflt)
{
	const char *v = env_str(env, name);

	if (v == NULL)
		v = dflt;
	return v != NULL ? xstrdup(v) : NULL;
}

/* A whole number in [lo, hi]; dflt when unset. */
static int
env_long(struct env *env, const char *name, long lo, long hi, long dflt,
    long *out)
{
	const char *v = env_str(env, name);
	char *end;
	long n;

	if (v == NULL) {
		*out = dflt;
		return 0;
	}
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi) {
		errbuf_set(env->eb, ERR_CONFIG,
		    "%s: '%s' is not a whole number from %ld to %ld",
		    name, v, lo, hi);
		return -1;
	}
	*out = n;
	return 0;
}

static int
env_mib(struct env *env, const char *name, long lo, long hi, long dflt,
    uint64_t *out)
{
	long n;

	if (env_long(env, name, lo, hi, dflt, &n) == -1)
		return -1;
	*out = (uint64_t)n * MIB;
	return 0;
}

static int
env_required(struct env *env, const char *name, char **out)
{
	const char *v = env_str(env, name);

	if (v == NULL) {
		errbuf_set(env->eb, ERR_CONFIG, "%s: not set (required)", name);
		return -1;
	}
	*out = xstrdup(v);
	return 0;
}

static int
env_choice(struct env *env, const char *name, const char *const *choices,
    int dflt, int *out)
{
	const char *v = env_str(env, name);
	struct strbuf list = STRBUF_INIT;
	int i;

	if (v == NULL) {
		*out = dflt;
		return 0;
	}
	for (i = 0; choices[i] != NULL; i++) {
		if (strcasecmp(v, choices[i]) == 0) {
			*out = i;
			strbuf_release(&list);
			return 0;
		}
		strbuf_addf(&list, "%s'%s'", i ? ", " : "", choices[i]);
	}
	errbuf_set(env->eb, ERR_CONFIG, "%s: '%s' is not one of %s", name, v,
	    list.buf);
	strbuf_release(&list);
	return -1;
}

static char *
home_path(struct env *env, const char *rest)
{
	const char *home = env_str(env, "HOME");
	struct passwd *pw;

	if (home == NULL && (pw = getpwuid(getuid())) != NULL)
		home = pw->pw_dir;
	return xasprintf("%s/%s", home != NULL ? home : "/", rest);
}

/* An absolute path with no trailing slash, for names used in messages. */
static int
check_dir_value(struct env *env, const char *name, char *path)
{
	size_t len = strlen(path);

	if (path[0] != '/') {
		errbuf_set(env->eb, ERR_CONFIG, "%s: '%s' is not an absolute path",
		    name, path);
		return -1;
	}
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	return 0;
}

static int
config_paths(struct config *cfg, struct env *env)
{
	const char *rootvar = cfg->tool == TOOL_BATCH ?
	    "S3_BATCH_BUCKETS_FOLDER" : "S3_SYNC_BUCKETS_FOLDER";
	const char *spool;
	char *base;

	cfg->root = env_dup(env, rootvar, NULL);
	if (cfg->root == NULL)
		cfg->root = home_path(env, cfg->tool == TOOL_BATCH ?
		    "s3_buckets/batch" : "s3_buckets/sync");
	if (check_dir_value(env, rootvar, cfg->root) == -1)
		return -1;
	if ((spool = env_str(env, "S3BATCH_SPOOL_DIR")) != NULL)
		base = xstrdup(spool);
	else if (geteuid() == 0)
		base = xstrdup("/var/spool/s3-batch");
	else
		base = home_path(env, ".local/state/s3-batch");
	if (check_dir_value(env, "S3BATCH_SPOOL_DIR", base) == -1) {
		free(base);
		return -1;
	}
	cfg->spool_dir = xasprintf("%s/%s", base, cfg->tool_name);
	free(base);
	return 0;
}

static int
config_endpoint(struct config *cfg, struct env *env)
{
	static const char *const styles[] = { "auto", "path", "virtual", NULL };
	const char *ep = env_str(env, "AWS_ENDPOINT_URL_S3");
	int style;
	long n;

	if (ep == NULL)
		ep = env_str(env, "AWS_ENDPOINT_URL");
	if (ep != NULL) {
		size_t len = strlen(ep);

		if (strncmp(ep, "http://", 7) != 0 &&
		    strncmp(ep, "https://", 8) != 0) {
			errbuf_set(env->eb, ERR_CONFIG,
			    "%s: '%s' does not start with http:// or https://",
			    env_str(env, "AWS_ENDPOINT_URL_S3") ?
			    "AWS_ENDPOINT_URL_S3" : "AWS_ENDPOINT_URL", ep);
			return -1;
		}
		while (len > 0 && ep[len - 1] == '/')
			len--;
		cfg->endpoint = xstrndup(ep, len);
	}
	cfg->region = env_dup(env, "AWS_REGION", NULL);
	if (cfg->region == NULL)
		cfg->region = env_dup(env, "AWS_DEFAULT_REGION", NULL);
	if (env_choice(env, "S3BATCH_ADDRESSING_STYLE", styles, ADDR_AUTO,
	    &style) == -1)
		return -1;
	cfg->addressing = (enum addressing)style;
	cfg->ca_bundle = env_dup(env, "AWS_CA_BUNDLE", NULL);
	if (env_long(env, "AWS_MAX_ATTEMPTS", 1, 100,
	    CONFIG_DEFAULT_MAX_ATTEMPTS, &n) == -1)
		return -1;
	cfg->max_attempts = (int)n;
	return 0;
}

static int
config_transfer(struct config *cfg, struct env *env)
{
	static const char *const sses[] = { "AES256", "aws:kms", NULL };
	int sse;
	long n;

	if (env_long(env, "S3BATCH_CONCURRENCY", 1, 256,
	    CONFIG_DEFAULT_CONCURRENCY, &n) == -1)
		return -1;
	cfg->concurrency = (int)n;
	if (env_mib(env, "S3BATCH_MULTIPART_THRESHOLD_MB", 5, 5 * 1024,
	    CONFIG_DEFAULT_MULTIPART_MB, &cfg->multipart_threshold) == -1)
		return -1;
	if (env_mib(env, "S3BATCH_PART_SIZE_MB", 5, 5 * 1024,
	    CONFIG_DEFAULT_PART_MB, &cfg->part_size) == -1)
		return -1;
	cfg->storage_class = env_dup(env, "S3BATCH_STORAGE_CLASS", NULL);
	if (env_choice(env, "S3BATCH_SSE", sses, -1, &sse) == -1)
		return -1;
	if (sse >= 0)
		cfg->sse = xstrdup(sses[sse]);
	cfg->sse_kms_key_id = env_dup(env, "S3BATCH_SSE_KMS_KEY_ID", NULL);
	if (cfg->sse_kms_key_id != NULL &&
	    (cfg->sse == NULL || strcmp(cfg->sse, "aws:kms") != 0)) {
		errbuf_set(env->eb, ERR_CONFIG,
		    "S3BATCH_SSE_KMS_KEY_ID: set, but S3BATCH_SSE is not 'aws:kms'");
		return -1;
	}
	return 0;
}

static int
config_selection(struct config *cfg, struct env *env)
{
	const char *ign = env->get("S3BATCH_IGNORE");

	if (env_long(env, "S3BATCH_SETTLE_SECONDS", 0, 7 * 86400, -1,
	    &cfg->settle_seconds) == -1)
		return -1;
	/* Set but empty means: ignore nothing. */
	cfg->ignore = xstrdup(ign != NULL ? ign : CONFIG_DEFAULT_IGNORE);
	if (env_mib(env, "MAX_BATCH_SIZE_MB", 1, 5 * 1024 * 1024,
	    CONFIG_DEFAULT_BATCH_MB, &cfg->max_batch_bytes) == -1)
		return -1;
	if (env_long(env, "S3BATCH_MAX_RUN_SECONDS", 0, LONG_MAX / 2, 0,
	    &cfg->max_run_seconds) == -1)
		return -1;
	return env_mib(env, "S3BATCH_MAX_RUN_MB", 0, LONG_MAX / (long)MIB, 0,
	    &cfg->max_run_bytes);
}

static int
config_manifest(struct config *cfg, struct env *env, int need_remote)
{
	static const char *const schemes[] = { "http", "https", NULL };
	char *slash;
	int scheme;
	long n;

	if (env_choice(env, "ELASTICSEARCH_LOGS_SCHEME", schemes, 0,
	    &scheme) == -1)
		return -1;
	cfg->es_scheme = xstrdup(schemes[scheme]);
	cfg->es_index = env_dup(env, "ELASTICSEARCH_LOGS_INDEX",
	    "s3-batch-manifest");
	cfg->es_username = env_dup(env, "ELASTICSEARCH_LOGS_USERNAME", NULL);
	cfg->es_password = env_dup(env, "ELASTICSEARCH_LOGS_PASSWORD", NULL);
	cfg->es_api_key = env_dup(env, "ELASTICSEARCH_LOGS_API_KEY", NULL);
	cfg->es_ca_bundle = env_dup(env, "ELASTICSEARCH_LOGS_CA_BUNDLE", NULL);
	if ((cfg->es_username == NULL) != (cfg->es_password == NULL)) {
		errbuf_set(env->eb, ERR_CONFIG, "%s: not set, but %s is",
		    cfg->es_username ? "ELASTICSEARCH_LOGS_PASSWORD" :
		    "ELASTICSEARCH_LOGS_USERNAME",
		    cfg->es_username ? "ELASTICSEARCH_LOGS_USERNAME" :
		    "ELASTICSEARCH_LOGS_PASSWORD");
		return -1;
	}
	if (!need_remote)
		return 0;
	if (env_required(env, "ELASTICSEARCH_LOGS_HOST", &cfg->es_host) == -1)
		return -1;
	if (env_str(env, "ELASTICSEARCH_LOGS_PORT") == NULL) {
		errbuf_set(env->eb, ERR_CONFIG,
		    "ELASTICSEARCH_LOGS_PORT: not set (required)");
		return -1;
	}
	if (env_long(env, "ELASTICSEARCH_LOGS_PORT", 1, 65535, 0, &n) == -1)
		return -1;
	cfg->es_port = (int)n;
	if (env_required(env, "MANIFEST_FALLBACK_BUCKET",
	    &cfg->fallback_bucket) == -1)
		return -1;
	/* "bucket/prefix" puts the fallback manifests under that prefix. */
	if ((slash = strchr(cfg->fallback_bucket, '/')) != NULL) {
		*slash = '\0';
		cfg->fallback_prefix = xstrdup(slash + 1);
	} else
		cfg->fallback_prefix = xstrdup("manifests");
	return 0;
}

static int
config_rsyslog(struct config *cfg, struct env *env)
{
	static const char *const protos[] = { "udp", "tcp", NULL };
	int proto;
	long n;

	cfg->rsyslog_host = env_dup(env, "RSYSLOG_HOST", NULL);
	if (env_long(env, "RSYSLOG_PORT", 1, 65535, 514, &n) == -1)
		return -1;
	cfg->rsyslog_port = (int)n;
	if (env_choice(env, "RSYSLOG_PROTOCOL", protos, 0, &proto) == -1)
		return -1;
	cfg->rsyslog_tcp = proto == 1;
	if (cfg->rsyslog_host == NULL && env_str(env, "RSYSLOG_PORT") != NULL) {
		errbuf_set(env->eb, ERR_CONFIG,
		    "RSYSLOG_HOST: not set, but RSYSLOG_PORT is");
		return -1;
	}
	return 0;
}

int
config_load(struct config *cfg, enum tool_kind tool,
    const char *(*getenv_fn)(const char *), int need_remote,
    struct errbuf *eb)
{
	struct env env = { getenv_fn, eb };

	memset(cfg, 0, sizeof(*cfg));
	cfg->tool = tool;
	cfg->tool_name = tool == TOOL_BATCH ? "s3-batch" : "s3-sync";
	if (config_paths(cfg, &env) == -1 ||
	    config_endpoint(cfg, &env) == -1 ||
	    config_transfer(cfg, &env) == -1 ||
	    config_selection(cfg, &env) == -1 ||
	    config_manifest(cfg, &env, need_remote) == -1 ||
	    config_rsyslog(cfg, &env) == -1) {
		config_release(cfg);
		return -1;
	}
	return 0;
}

void
config_release(struct config *cfg)
{
	char **strs[] = {
		&cfg->root, &cfg->spool_dir, &cfg->region, &cfg->endpoint,
		&cfg->ca_bundle, &cfg->storage_class, &cfg->sse,
		&cfg->sse_kms_key_id, &cfg->ignore, &cfg->es_host,
		&cfg->es_scheme, &cfg->es_index, &cfg->es_username,
		&cfg->es_password, &cfg->es_api_key, &cfg->es_ca_bundle,
		&cfg->fallback_bucket, &cfg->fallback_prefix,
		&cfg->rsyslog_host,
	};
	size_t i;

	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (*strs[i] != NULL && (strs[i] == &cfg->es_password ||
		    strs[i] == &cfg->es_api_key))
			explicit_bzero(*strs[i], strlen(*strs[i]));
		free(*strs[i]);
		*strs[i] = NULL;
	}
}
