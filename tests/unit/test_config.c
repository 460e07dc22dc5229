#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"

static const char **env;

static const char *
fake_getenv(const char *name)
{
	size_t n = strlen(name);

	for (const char **p = env; *p != NULL; p++)
		if (strncmp(*p, name, n) == 0 && (*p)[n] == '=')
			return *p + n + 1;
	return NULL;
}

static int
load(struct config *c, enum tool_kind t, struct errbuf *eb, const char **e)
{
	env = e;
	return config_load(c, t, fake_getenv, 1, eb);
}

#define BASE "ELASTICSEARCH_LOGS_HOST=es", "ELASTICSEARCH_LOGS_PORT=9200", \
	"MANIFEST_FALLBACK_BUCKET=fb", "HOME=/home/u"

static void
test_defaults(void)
{
	const char *e[] = { BASE, "S3BATCH_SPOOL_DIR=/sp/", NULL };
	struct config c;
	struct errbuf eb;

	CHECK(load(&c, TOOL_SYNC, &eb, e) == 0);
	CHECK_STREQ(c.root, "/home/u/s3_buckets/sync");
	CHECK_STREQ(c.spool_dir, "/sp/s3-sync");
	CHECK(c.concurrency == CONFIG_DEFAULT_CONCURRENCY);
	CHECK(c.max_batch_bytes == 1024ULL * 1024 * 1024);
	CHECK(c.settle_seconds == -1);
	CHECK_STREQ(c.ignore, CONFIG_DEFAULT_IGNORE);
	CHECK_STREQ(c.es_index, "s3-batch-manifest");
	CHECK_STREQ(c.fallback_bucket, "fb");
	CHECK_STREQ(c.fallback_prefix, "manifests");
	CHECK(c.addressing == ADDR_AUTO && c.endpoint == NULL);
	config_release(&c);
	CHECK(load(&c, TOOL_BATCH, &eb, e) == 0);
	CHECK_STREQ(c.root, "/home/u/s3_buckets/batch");
	config_release(&c);
}

static void
test_values(void)
{
	const char *e[] = { BASE, "MANIFEST_FALLBACK_BUCKET=fb/pre/fix",
	    "S3BATCH_IGNORE=", "AWS_ENDPOINT_URL=http://127.0.0.1:7480/",
	    "S3BATCH_ADDRESSING_STYLE=VIRTUAL", "MAX_BATCH_SIZE_MB=5",
	    "S3BATCH_SSE=aws:kms", "S3BATCH_SSE_KMS_KEY_ID=k", NULL };
	struct config c;
	struct errbuf eb;

	e[2] = "MANIFEST_FALLBACK_BUCKET=fb/pre/fix";
	CHECK(load(&c, TOOL_SYNC, &eb, e) == 0);
	CHECK_STREQ(c.fallback_bucket, "fb");
	CHECK_STREQ(c.fallback_prefix, "pre/fix");
	CHECK_STREQ(c.ignore, "");
	CHECK_STREQ(c.endpoint, "http://127.0.0.1:7480");
	CHECK(c.addressing == ADDR_VIRTUAL);
	CHECK(c.max_batch_bytes == 5ULL * 1024 * 1024);
	config_release(&c);
}

/* Each bad value: -1, ERR_CONFIG, the variable named first. */
static void
bad(const char *assign, const char *name)
{
	const char *e[] = { assign, BASE, NULL };	/* first match wins */
	struct config c;
	struct errbuf eb;

	errbuf_clear(&eb);
	if (load(&c, TOOL_SYNC, &eb, e) == 0) {
		fprintf(stderr, "'%s' was accepted\n", assign);
		config_release(&c);
	}
	CHECK(eb.kind != ERR_NONE);
	CHECK(eb.kind == ERR_CONFIG && errbuf_exit_status(&eb) == 78);
	if (strncmp(eb.msg, name, strlen(name)) != 0)
		fprintf(stderr, "message '%s' does not start with '%s'\n",
		    eb.msg, name);
	CHECK(strncmp(eb.msg, name, strlen(name)) == 0);
}

static void
test_errors(void)
{
	const char *missing[] = { "ELASTICSEARCH_LOGS_PORT=1",
	    "MANIFEST_FALLBACK_BUCKET=fb", NULL };
	struct config c;
	struct errbuf eb;

	CHECK(load(&c, TOOL_SYNC, &eb, missing) == -1);
	CHECK_STREQ(eb.msg, "ELASTICSEARCH_LOGS_HOST: not set (required)");
	bad("ELASTICSEARCH_LOGS_PORT=99999", "ELASTICSEARCH_LOGS_PORT");
	bad("S3BATCH_CONCURRENCY=0", "S3BATCH_CONCURRENCY");
	bad("S3BATCH_CONCURRENCY=12abc", "S3BATCH_CONCURRENCY");
	bad("MAX_BATCH_SIZE_MB=-1", "MAX_BATCH_SIZE_MB");
	bad("S3BATCH_SETTLE_SECONDS=soon", "S3BATCH_SETTLE_SECONDS");
	bad("S3BATCH_ADDRESSING_STYLE=dns", "S3BATCH_ADDRESSING_STYLE");
	bad("S3BATCH_MULTIPART_THRESHOLD_MB=1", "S3BATCH_MULTIPART_THRESHOLD_MB");
	bad("S3BATCH_PART_SIZE_MB=4", "S3BATCH_PART_SIZE_MB");
	bad("S3BATCH_SSE=des", "S3BATCH_SSE");
	bad("S3BATCH_SSE_KMS_KEY_ID=k", "S3BATCH_SSE_KMS_KEY_ID");
	bad("AWS_ENDPOINT_URL=ftp://x", "AWS_ENDPOINT_URL");
	bad("AWS_MAX_ATTEMPTS=0", "AWS_MAX_ATTEMPTS");
	bad("RSYSLOG_PROTOCOL=sctp", "RSYSLOG_PROTOCOL");
	bad("RSYSLOG_PORT=514", "RSYSLOG_HOST");
	bad("ELASTICSEARCH_LOGS_SCHEME=ftp", "ELASTICSEARCH_LOGS_SCHEME");
	bad("ELASTICSEARCH_LOGS_USERNAME=u", "ELASTICSEARCH_LOGS_PASSWORD");
	bad("S3BATCH_SPOOL_DIR=relative", "S3BATCH_SPOOL_DIR");
	bad("S3BATCH_MAX_RUN_SECONDS=-5", "S3BATCH_MAX_RUN_SECONDS");
}

int
main(void)
{
	test_defaults();
	test_values();
	test_errors();
	CHECK_DONE();
}
