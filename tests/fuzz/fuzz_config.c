/*
 * config: config_load() on an environment made from the input.
 *
 * Input: a flags byte (bit 0: s3-sync rather than s3-batch, bit 1: a real
 * run rather than --dry-run), then NAME=VALUE lines; the first line for a
 * name wins, as in a real environment. Names the parser asks for are
 * recorded.
 *
 * Invariants: 0 with every always-set field filled and absolute paths, or
 * -1 with ERR_CONFIG, a one-line message starting "NAME:" for a name the
 * parser asked for, and nothing left allocated in *cfg. config_release()
 * frees everything (LeakSanitizer checks).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "errbuf.h"
#include "fuzz.h"

#define MAX_VARS	64
#define MAX_ASKED	64

static struct {
	char		*name[MAX_VARS];
	char		*value[MAX_VARS];
	size_t		 n;
	const char	*asked[MAX_ASKED];
	size_t		 nasked;
} env;

static const char *
fake_getenv(const char *name)
{
	size_t i;

	if (env.nasked < MAX_ASKED)
		env.asked[env.nasked++] = name;
	for (i = 0; i < env.n; i++)
		if (strcmp(env.name[i], name) == 0)
			return env.value[i];
	return NULL;
}

static void
env_parse(char *text)
{
	char *line, *nl, *eq;

	for (line = text; line != NULL && env.n < MAX_VARS; line = nl) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		if ((eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		env.name[env.n] = line;
		env.value[env.n++] = eq + 1;
	}
}

/* The message starts with "NAME:" for a name that was asked for. */
static void
check_message(const struct errbuf *eb)
{
	size_t i, len;

	FUZZ_CHECK(eb->kind == ERR_CONFIG);
	FUZZ_CHECK(eb->msg[0] != '\0');
	for (i = 0; i < env.nasked; i++) {
		len = strlen(env.asked[i]);
		if (strncmp(eb->msg, env.asked[i], len) == 0 &&
		    eb->msg[len] == ':')
			return;
	}
	FUZZ_CHECK(!"message names a variable that was asked for");
}

static void
check_released(const struct config *cfg)
{
	const char *const strs[] = {
		cfg->root, cfg->spool_dir, cfg->region, cfg->endpoint,
		cfg->ca_bundle, cfg->storage_class, cfg->sse,
		cfg->sse_kms_key_id, cfg->ignore, cfg->es_host,
		cfg->es_scheme, cfg->es_index, cfg->es_username,
		cfg->es_password, cfg->es_api_key, cfg->es_ca_bundle,
		cfg->fallback_bucket, cfg->fallback_prefix, cfg->rsyslog_host,
	};
	size_t i;

	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		FUZZ_CHECK(strs[i] == NULL);
}

static void
check_loaded(const struct config *cfg, int need_remote)
{
	FUZZ_CHECK(cfg->root != NULL && cfg->root[0] == '/');
	FUZZ_CHECK(cfg->spool_dir != NULL && cfg->spool_dir[0] == '/');
	FUZZ_CHECK(cfg->ignore != NULL && cfg->es_scheme != NULL &&
	    cfg->es_index != NULL);
	FUZZ_CHECK(cfg->max_attempts >= 1 && cfg->max_attempts <= 100);
	FUZZ_CHECK(cfg->concurrency >= 1 && cfg->concurrency <= 256);
	FUZZ_CHECK(cfg->part_size >= 5 * 1024 * 1024);
	FUZZ_CHECK(cfg->max_batch_bytes > 0);
	FUZZ_CHECK(cfg->rsyslog_port >= 1 && cfg->rsyslog_port <= 65535);
	FUZZ_CHECK((cfg->es_username == NULL) == (cfg->es_password == NULL));
	if (cfg->sse_kms_key_id != NULL)
		FUZZ_CHECK(cfg->sse != NULL &&
		    strcmp(cfg->sse, "aws:kms") == 0);
	if (need_remote) {
		FUZZ_CHECK(cfg->es_host != NULL);
		FUZZ_CHECK(cfg->es_port >= 1 && cfg->es_port <= 65535);
		FUZZ_CHECK(cfg->fallback_bucket != NULL &&
		    cfg->fallback_prefix != NULL);
		FUZZ_CHECK(strchr(cfg->fallback_bucket, '/') == NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	struct errbuf eb;
	char *text;
	int flags, rc;

	if (size == 0)
		return 0;
	flags = data[0];
	text = fuzz_cstr(data + 1, size - 1);
	memset(&env, 0, sizeof(env));
	env_parse(text);
	errbuf_clear(&eb);
	rc = config_load(&cfg, flags & 1 ? TOOL_SYNC : TOOL_BATCH,
	    fake_getenv, (flags & 2) != 0, &eb);
	FUZZ_CHECK(rc == 0 || rc == -1);
	if (rc == -1) {
		check_message(&eb);
		check_released(&cfg);
	} else {
		FUZZ_CHECK(eb.kind == ERR_NONE);
		check_loaded(&cfg, (flags & 2) != 0);
		config_release(&cfg);
		check_released(&cfg);
	}
	free(text);
	return 0;
}
