/*
 * test_es: the ElasticSearch client against a real OpenSearch 2.19 that
 * this program starts (tests/lib/opensearch.sh, port 19250), directly and
 * through the fault proxy (tests/lib/faultproxy.py) for the failures a
 * healthy server does not make: 429 and 503 answers, a lost answer, 401,
 * 413, a server without composable templates. Needs java and mvn; without
 * them the test fails, it does not skip.
 *
 * A watchdog child holds the read end of a pipe: when this program ends,
 * however it ends, the pipe closes and the watchdog stops the proxy and
 * the node and removes their directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "check.h"
#include "config.h"
#include "errbuf.h"
#include "es.h"
#include "http.h"
#include "log.h"
#include "sigv4.h"
#include "strbuf.h"

#define OS_PORT		19250
#define INDEX		"s3b-unit"
#define PASSWORD	"s3cret-pw"
#define API_KEY		"a2V5OnNlY3JldA=="
#define TS		"2024-05-06T07:08:09Z"

static char root[64];		/* /tmp/s3b-es-unit-<pid> */
static char os_env[160];	/* OS_PORT=... OS_ROOT=... */
static struct http_pool *pool;
static int watchdog_fd = -1;
static pid_t watchdog_pid = -1, proxy_pid = -1;
static int proxy_port;

/* What the client logged since log_reset(). */
static struct strbuf logged = STRBUF_INIT;
static int nbulk, nwarn;
static size_t bulk_first, bulk_max_later;	/* request body sizes */

static void
capture(enum log_level level, const char *line, void *arg)
{
	const char *p = "elasticsearch: bulk of ";
	size_t docs, bytes;

	(void)arg;
	strbuf_addf(&logged, "%d %s\n", (int)level, line);
	if (level == LOG_LVL_WARN)
		nwarn++;
	if (strncmp(line, p, strlen(p)) == 0 && sscanf(line + strlen(p),
	    "%zu documents, %zu bytes", &docs, &bytes) == 2) {
		if (nbulk++ == 0)
			bulk_first = bytes;
		else if (bytes > bulk_max_later)
			bulk_max_later = bytes;
	}
	if (getenv("TEST_ES_VERBOSE") != NULL)
		fprintf(stderr, "log %d: %s\n", (int)level, line);
}

static void
log_reset(void)
{
	strbuf_reset(&logged);
	nbulk = nwarn = 0;
	bulk_first = bulk_max_later = 0;
}

static int
logged_has(const char *s)
{
	return logged.buf != NULL && strstr(logged.buf, s) != NULL;
}

static int
logged_count(const char *s)
{
	const char *p = logged.buf;
	int n = 0;

	while (p != NULL && (p = strstr(p, s)) != NULL) {
		n++;
		p++;
	}
	return n;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the servers ---- */

static void
watchdog_start(void)
{
	char cmd[512];
	int p[2];
	char c;

	snprintf(cmd, sizeof(cmd), "[ -f %s/proxy.pid ] && "
	    "kill -TERM $(cat %s/proxy.pid) 2>/dev/null; "
	    "%s tests/lib/opensearch.sh stop >/dev/null 2>&1; rm -rf %s",
	    root, root, os_env, root);
	if (pipe2(p, O_CLOEXEC) == -1 || (watchdog_pid = fork()) == -1) {
		perror("test_es: watchdog");
		exit(1);
	}
	if (watchdog_pid == 0) {
		close(p[1]);
		while (read(p[0], &c, 1) == -1 && errno == EINTR)
			;
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	watchdog_fd = p[1];
}

/* Let the watchdog clean up, and wait for it. */
static void
watchdog_finish(void)
{
	int st;

	if (proxy_pid > 0) {
		kill(proxy_pid, SIGTERM);
		waitpid(proxy_pid, &st, 0);
	}
	close(watchdog_fd);
	waitpid(watchdog_pid, &st, 0);
}

static int
node_start(void)
{
	char cmd[512];
	int rc;

	if (system("command -v java >/dev/null && command -v mvn >/dev/null")
	    != 0) {
		fprintf(stderr, "test_es: ERROR: java and mvn are needed to "
		    "run OpenSearch (see tests/lib/opensearch.sh)\n");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "%s tests/lib/opensearch.sh start", os_env);
	if ((rc = system(cmd)) != 0) {
		fprintf(stderr, "test_es: ERROR: '%s' failed (%d)\n", cmd, rc);
		return -1;
	}
	return 0;
}

static void
proxy_rules(const char *json)
{
	char tmp[128], path[128];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s/faults.tmp", root);
	snprintf(path, sizeof(path), "%s/faults.json", root);
	if ((f = fopen(tmp, "w")) == NULL || fputs(json, f) == EOF ||
	    fclose(f) == EOF || rename(tmp, path) == -1) {
		perror("test_es: faults.json");
		exit(1);
	}
}

static int
proxy_start(void)
{
	char ctl[128], logp[128], up[64], line[128], pidp[128];
	FILE *f;
	int p[2];

	snprintf(ctl, sizeof(ctl), "%s/faults.json", root);
	snprintf(logp, sizeof(logp), "%s/proxy.log", root);
	snprintf(up, sizeof(up), "127.0.0.1:%d", OS_PORT);
	proxy_rules("[]");
	if (pipe(p) == -1 || (proxy_pid = fork()) == -1)
		return -1;
	if (proxy_pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execlp("python3", "python3", "tests/lib/faultproxy.py",
		    "--listen", "127.0.0.1:0", "--upstream", up, "--control",
		    ctl, "--log", logp, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if ((f = fdopen(p[0], "r")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) == NULL ||
	    sscanf(line, "listening on 127.0.0.1:%d", &proxy_port) != 1) {
		fclose(f);
		return -1;
	}
	fclose(f);
	snprintf(pidp, sizeof(pidp), "%s/proxy.pid", root);
	if ((f = fopen(pidp, "w")) == NULL)
		return -1;
	fprintf(f, "%d\n", (int)proxy_pid);
	fclose(f);
	return 0;
}

/* The last request the proxy logged, parsed (caller frees), or NULL. */
static cJSON *
proxy_last(void)
{
	struct strbuf sb = STRBUF_INIT;
	char path[128];
	char *last;
	cJSON *j;

	snprintf(path, sizeof(path), "%s/proxy.log", root);
	if (strbuf_read_file(&sb, path, 64 << 20) == -1 || sb.len < 2)
		return NULL;
	sb.buf[--sb.len] = '\0';	/* the final newline */
	last = strrchr(sb.buf, '\n');
	last = last != NULL ? last + 1 : sb.buf;
	j = cJSON_Parse(last);
	strbuf_release(&sb);
	return j;
}

/* The value of a request header in a proxy log entry, or NULL. */
static const char *
proxy_header(const cJSON *entry, const char *name)
{
	const cJSON *h;

	cJSON_ArrayForEach(h, cJSON_GetObjectItem(entry, "headers")) {
		if (strcasecmp(cJSON_GetArrayItem(h, 0)->valuestring,
		    name) == 0)
			return cJSON_GetArrayItem(h, 1)->valuestring;
	}
	return NULL;
}

/* A port where nothing listens (bound, then closed again). */
static int
dead_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) != -1 &&
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	if (fd != -1)
		close(fd);
	return port;
}

/* A request straight to the node; the status, or -1. */
static long
os_req(const char *method, const char *path, const char *body,
    struct strbuf *out)
{
	const char *hdrs[] = { "Content-Type: application/json" };
	struct http_request req;
	struct http_response resp;
	struct errbuf eb;
	char url[256];
	long st = -1;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", OS_PORT, path);
	http_request_init(&req);
	http_response_init(&resp);
	req.method = method;
	req.url = url;
	req.headers = hdrs;
	req.nheaders = 1;
	req.body = body;
	req.body_len = body != NULL ? strlen(body) : 0;
	req.timeout_ms = 30000;
	if (http_pool_do(pool, &req, &resp, &eb) == 0)
		st = resp.status;
	if (out != NULL) {
		strbuf_reset(out);
		strbuf_add(out, resp.body.buf, resp.body.len);
	}
	http_response_release(&resp);
	return st;
}

static long
os_count(const char *index)
{
	struct strbuf sb = STRBUF_INIT;
	char path[128];
	cJSON *j;
	long n = -1;

	snprintf(path, sizeof(path), "/%s/_refresh", index);
	os_req("POST", path, NULL, NULL);
	snprintf(path, sizeof(path), "/%s/_count", index);
	if (os_req("GET", path, NULL, &sb) == 200 &&
	    (j = cJSON_Parse(sb.buf)) != NULL) {
		if (cJSON_IsNumber(cJSON_GetObjectItem(j, "count")))
			n = (long)cJSON_GetObjectItem(j, "count")->valuedouble;
		cJSON_Delete(j);
	}
	strbuf_release(&sb);
	return n;
}

/* The type index's mapping gives a field path like "file.path". */
static char *
os_field_type(const char *index, const char *dotted)
{
	struct strbuf sb = STRBUF_INIT;
	char path[128], name[64], *type = NULL;
	const char *p = dotted, *dot;
	const cJSON *node;
	cJSON *j;

	snprintf(path, sizeof(path), "/%s/_mapping", index);
	if (os_req("GET", path, NULL, &sb) != 200 ||
	    (j = cJSON_Parse(sb.buf)) == NULL) {
		strbuf_release(&sb);
		return NULL;
	}
	node = cJSON_GetObjectItem(cJSON_GetObjectItem(j, index), "mappings");
	for (;;) {
		dot = strchr(p, '.');
		snprintf(name, sizeof(name), "%.*s",
		    (int)(dot ? (size_t)(dot - p) : strlen(p)), p);
		node = cJSON_GetObjectItem(cJSON_GetObjectItem(node,
		    "properties"), name);
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	node = cJSON_GetObjectItem(node, "type");
	if (cJSON_IsString(node))
		type = xstrdup(node->valuestring);
	cJSON_Delete(j);
	strbuf_release(&sb);
	return type;
}

/* ---- documents ---- */

struct docs {
	struct es_doc	*d;
	char		(*ids)[65];
	char		**json;
	enum es_item	*res;
	size_t		 n;
};

/* n documents for archive key, their payload pad bytes long. */
static void
docs_make(struct docs *ds, size_t n, const char *key, const char *ts,
    size_t pad)
{
	char name[64], *padding = xmalloc(pad + 1);
	size_t i;

	memset(padding, 'x', pad);
	padding[pad] = '\0';
	ds->n = n;
	ds->d = xcalloc(n, sizeof(*ds->d));
	ds->ids = xcalloc(n, sizeof(*ds->ids));
	ds->json = xcalloc(n, sizeof(*ds->json));
	ds->res = xcalloc(n, sizeof(*ds->res));
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "dir/f%zu.log", i);
		es_doc_id(key, name, strlen(name), ds->ids[i]);
		ds->json[i] = xasprintf("{\"@timestamp\":\"%s\",\"file\":"
		    "{\"path\":\"%s\",\"size\":%zu,\"pad\":\"%s\"},\"aws\":"
		    "{\"s3\":{\"object\":{\"key\":\"%s\"}}}}", ts, name, i,
		    padding, key);
		ds->d[i].id = ds->ids[i];
		ds->d[i].json = ds->json[i];
		ds->d[i].json_len = strlen(ds->json[i]);
		ds->res[i] = (enum es_item)-1;
	}
	free(padding);
}

static void
docs_free(struct docs *ds)
{
	size_t i;

	for (i = 0; i < ds->n; i++)
		free(ds->json[i]);
	free(ds->json);
	free(ds->ids);
	free(ds->d);
	free(ds->res);
	memset(ds, 0, sizeof(*ds));
}

static size_t
docs_with(const struct docs *ds, enum es_item want)
{
	size_t i, k = 0;

	for (i = 0; i < ds->n; i++)
		k += ds->res[i] == want;
	return k;
}

static struct es_client *
client(int port, const char *index, const char *user, const char *api_key)
{
	struct config cfg;
	struct errbuf eb;
	struct es_client *es;

	memset(&cfg, 0, sizeof(cfg));
	cfg.es_host = (char *)"127.0.0.1";
	cfg.es_port = port;
	cfg.es_scheme = (char *)"http";
	cfg.es_index = (char *)index;
	cfg.es_username = (char *)user;
	cfg.es_password = user != NULL ? (char *)PASSWORD : NULL;
	cfg.es_api_key = (char *)api_key;
	errbuf_clear(&eb);
	if ((es = es_client_new(&cfg, pool, &eb)) == NULL)
		fprintf(stderr, "test_es: client: %s\n", eb.msg);
	return es;
}

/* ---- the cases ---- */

static void
test_doc_id(void)
{
	char a[65], b[65], c[65];

	/* printf 'a/b.tar\0x.log' | sha256sum */
	es_doc_id("a/b.tar", "x.log", 5, a);
	CHECK_STREQ(a, "a43584ac7c095bf24bad62cff1c0b0e4e471053a712e1e075fb1ec"
	    "4959bce8c6");
	es_doc_id("a/b.tar", "x.log", 5, b);
	CHECK_STREQ(a, b);
	/* name_len counts, not the NUL: printf 'a/b.tar\0x.l' | sha256sum */
	es_doc_id("a/b.tar", "x.log", 3, c);
	CHECK_STREQ(c, "34bcaa04550196a621f160525043878235e4712d52849516774dc1"
	    "0c29c450e8");
	/* the NUL keeps ("a/b", "c") apart from ("a/", "bc") */
	es_doc_id("a/b", "c", 1, b);
	es_doc_id("a/", "bc", 2, c);
	CHECK(strcmp(b, c) != 0);
}

static void
test_args(void)
{
	struct config cfg;
	struct errbuf eb;
	struct es_client *es;
	struct es_doc bad = { "id", "{\"a\":1}\n{\"b\":2}", 15 };
	enum es_item res;

	memset(&cfg, 0, sizeof(cfg));
	cfg.es_host = (char *)"127.0.0.1";
	cfg.es_port = 1;
	cfg.es_scheme = (char *)"http";
	cfg.es_index = (char *)"Upper";
	errbuf_clear(&eb);
	CHECK(es_client_new(&cfg, pool, &eb) == NULL);
	CHECK(eb.kind == ERR_CONFIG);
	CHECK(strstr(eb.msg, "ELASTICSEARCH_LOGS_INDEX") != NULL);
	cfg.es_index = (char *)"_x";
	CHECK(es_client_new(&cfg, pool, &eb) == NULL);
	cfg.es_index = (char *)"a,b";
	CHECK(es_client_new(&cfg, pool, &eb) == NULL);

	es = client(dead_port(), INDEX, NULL, NULL);
	errbuf_clear(&eb);
	CHECK(es_bulk(es, &bad, 1, &res, &eb) == -1);
	CHECK(eb.kind == ERR_INTERNAL);
	errbuf_clear(&eb);
	CHECK(es_bulk(es, NULL, 0, NULL, &eb) == 0);
	CHECK(eb.kind == ERR_NONE);
	es_client_free(es);
	es_client_free(NULL);
}

static void
test_template_and_bulk(void)
{
	struct strbuf sb = STRBUF_INIT;
	struct es_client *es = client(OS_PORT, INDEX, NULL, NULL);
	struct docs ds;
	struct errbuf eb;
	char path[128], *type;

	errbuf_clear(&eb);
	log_reset();
	CHECK(es_ensure_template(es, &eb) == 0);
	CHECK(os_req("GET", "/_index_template/" INDEX, NULL, &sb) == 200);
	CHECK(strstr(sb.buf, "\"" INDEX "-*\"") != NULL);
	/* cached: no second request */
	CHECK(es_ensure_template(es, &eb) == 0);
	/* one request: its line and its answer's */
	CHECK(logged_count("elasticsearch: PUT '") == 2);

	docs_make(&ds, 3, "logs/a/1.tar", TS, 10);
	log_reset();
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	CHECK(docs_with(&ds, ES_ITEM_OK) == 3);
	CHECK(nbulk == 1 && nwarn == 0);
	CHECK(eb.kind == ERR_NONE);
	CHECK(os_count(INDEX) == 3);
	type = os_field_type(INDEX, "@timestamp");
	CHECK_STREQ(type, "date");
	free(type);
	type = os_field_type(INDEX, "file.path");
	CHECK_STREQ(type, "keyword");
	free(type);
	/* searchable by the fields */
	CHECK(os_req("POST", "/" INDEX "/_search", "{\"query\":{\"term\":"
	    "{\"file.path\":\"dir/f1.log\"}}}", &sb) == 200);
	CHECK(strstr(sb.buf, "\"value\":1") != NULL);
	docs_free(&ds);

	/* the same ids again, newer content: overwritten, not added */
	docs_make(&ds, 3, "logs/a/1.tar", "2024-05-06T08:00:00Z", 10);
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	CHECK(docs_with(&ds, ES_ITEM_OK) == 3);
	CHECK(os_count(INDEX) == 3);
	snprintf(path, sizeof(path), "/" INDEX "/_doc/%s", ds.ids[2]);
	CHECK(os_req("GET", path, NULL, &sb) == 200);
	CHECK(strstr(sb.buf, "2024-05-06T08:00:00Z") != NULL);
	CHECK(strstr(sb.buf, "\"_version\":2") != NULL);
	docs_free(&ds);
	strbuf_release(&sb);
	es_client_free(es);
}

static void
test_mapping_conflict(void)
{
	struct es_client *es = client(OS_PORT, INDEX, NULL, NULL);
	struct docs ds;
	struct errbuf eb;

	docs_make(&ds, 3, "logs/a/2.tar", TS, 10);
	free(ds.json[1]);
	ds.json[1] = xstrdup("{\"@timestamp\":\"not a date\"}");
	ds.d[1].json = ds.json[1];
	ds.d[1].json_len = strlen(ds.json[1]);
	errbuf_clear(&eb);
	log_reset();
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	CHECK(ds.res[0] == ES_ITEM_OK);
	CHECK(ds.res[1] == ES_ITEM_REJECTED);
	CHECK(ds.res[2] == ES_ITEM_OK);
	CHECK(nbulk == 1 && nwarn == 1);
	CHECK(logged_has(ds.ids[1]));
	CHECK(logged_has("HTTP 400 mapper_parsing_exception"));
	CHECK(eb.kind == ERR_NONE);
	CHECK(os_count(INDEX) == 5);
	docs_free(&ds);
	es_client_free(es);
}

/*
 * A write block is a deliberate refusal by an operator, and can last: the
 * items are REJECTED (SPEC: other than 429 and 5xx goes to the fallback),
 * at once, without retries.
 */
static void
test_write_block(void)
{
	struct es_client *es = client(OS_PORT, INDEX, NULL, NULL);
	struct docs ds;
	struct errbuf eb;
	double t0;

	CHECK(os_req("PUT", "/" INDEX "/_settings",
	    "{\"index.blocks.write\":true}", NULL) == 200);
	docs_make(&ds, 2, "logs/a/3.tar", TS, 10);
	errbuf_clear(&eb);
	log_reset();
	t0 = now_s();
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	CHECK(docs_with(&ds, ES_ITEM_REJECTED) == 2);
	CHECK(nbulk == 1 && nwarn == 2);
	CHECK(logged_has("HTTP 403 cluster_block_exception"));
	CHECK(now_s() - t0 < 5);
	CHECK(os_req("PUT", "/" INDEX "/_settings",
	    "{\"index.blocks.write\":false}", NULL) == 200);
	CHECK(os_count(INDEX) == 5);
	docs_free(&ds);
	es_client_free(es);
}

/* 10 MiB of documents: at least three requests, none above 4 MiB. */
static void
test_large(void)
{
	struct es_client *es = client(OS_PORT, INDEX "-big", NULL, NULL);
	struct docs ds;
	struct errbuf eb;
	double t0;
	char *type;

	docs_make(&ds, 2600, "logs/big/1.tar", TS, 4000);
	errbuf_clear(&eb);
	log_reset();
	t0 = now_s();
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	printf("test_es: 2600 documents (%.1f MiB) in %d requests, %.2f s\n",
	    2600.0 * 4200 / 1048576, nbulk, now_s() - t0);
	CHECK(docs_with(&ds, ES_ITEM_OK) == 2600);
	CHECK(nbulk == 3);
	CHECK(bulk_first <= ES_BULK_MAX_BYTES);
	CHECK(bulk_max_later <= ES_BULK_MAX_BYTES);
	CHECK(bulk_first > ES_BULK_MAX_BYTES - 8192);
	CHECK(os_count(INDEX "-big") == 2600);
	/* "<index>-*" is the template's too */
	type = os_field_type(INDEX "-big", "@timestamp");
	CHECK_STREQ(type, "date");
	free(type);
	docs_free(&ds);
	es_client_free(es);
}

static void
test_down(void)
{
	struct es_client *es = client(dead_port(), INDEX, NULL, NULL);
	struct docs ds;
	struct errbuf eb;
	double t;

	docs_make(&ds, 3, "logs/a/4.tar", TS, 10);
	errbuf_clear(&eb);
	log_reset();
	t = now_s();
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	t = now_s() - t;
	printf("test_es: server down: %zu of 3 UNSENT after %d tries in "
	    "%.2f s\n", docs_with(&ds, ES_ITEM_UNSENT), nbulk, t);
	CHECK(docs_with(&ds, ES_ITEM_UNSENT) == 3);
	CHECK(nbulk == ES_MAX_ATTEMPTS);
	CHECK(t < 10);
	CHECK(eb.kind == ERR_REMOTE);
	CHECK(strstr(eb.msg, "3 of 3 documents not indexed") != NULL);
	CHECK(nwarn == 0);
	docs_free(&ds);
	es_client_free(es);
}

/* The request on the wire: typeless NDJSON, trailing newline, auth. */
static void
test_wire(void)
{
	struct es_client *es = client(proxy_port, INDEX, "user", NULL);
	struct strbuf want = STRBUF_INIT;
	struct docs ds;
	struct errbuf eb;
	char hex[65];
	cJSON *e;

	proxy_rules("[]");
	docs_make(&ds, 1, "logs/a/5.tar", TS, 10);
	errbuf_clear(&eb);
	log_reset();
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	CHECK(ds.res[0] == ES_ITEM_OK);
	strbuf_addf(&want, "{\"index\":{\"_index\":\"" INDEX "\",\"_id\":"
	    "\"%s\"}}\n%s\n", ds.ids[0], ds.json[0]);
	sigv4_sha256_hex(want.buf, want.len, hex);
	CHECK((e = proxy_last()) != NULL);
	CHECK_STREQ(cJSON_GetObjectItem(e, "method")->valuestring, "POST");
	CHECK(strncmp(cJSON_GetObjectItem(e, "target")->valuestring,
	    "/_bulk?", 7) == 0);
	CHECK_STREQ(proxy_header(e, "Content-Type"), "application/x-ndjson");
	/* base64("user:s3cret-pw") */
	CHECK_STREQ(proxy_header(e, "Authorization"),
	    "Basic dXNlcjpzM2NyZXQtcHc=");
	CHECK_STREQ(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "body"),
	    "sha256")->valuestring, hex);
	cJSON_Delete(e);
	CHECK(!logged_has(PASSWORD) && !logged_has("dXNlcjpzM2NyZXQtcHc="));
	es_client_free(es);

	/* an API key wins over user and password */
	es = client(proxy_port, INDEX, "user", API_KEY);
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	CHECK((e = proxy_last()) != NULL);
	CHECK_STREQ(proxy_header(e, "Authorization"), "ApiKey " API_KEY);
	cJSON_Delete(e);
	CHECK(!logged_has(API_KEY));
	es_client_free(es);
	docs_free(&ds);
	strbuf_release(&want);
}

/* Whole requests answered 503, or their answer lost: sent again. */
static void
test_retry_request(void)
{
	struct es_client *es = client(proxy_port, INDEX, NULL, NULL);
	struct docs ds;
	struct errbuf eb;
	long before = os_count(INDEX);

	proxy_rules("[{\"match\":{\"path_re\":\"/_bulk$\"},\"action\":503,"
	    "\"count\":1,\"body\":\"{}\",\"content_type\":"
	    "\"application/json\"}]");
	docs_make(&ds, 3, "logs/a/6.tar", TS, 10);
	errbuf_clear(&eb);
	log_reset();
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	CHECK(docs_with(&ds, ES_ITEM_OK) == 3);
	CHECK(nbulk == 2 && nwarn == 0);
	CHECK(os_count(INDEX) == before + 3);

	/*
	 * Indexed, then the connection closed before the answer. Twice:
	 * libcurl itself sends again once when a reused connection dies.
	 */
	proxy_rules("[{\"match\":{\"path_re\":\"/_bulk$\"},\"action\":"
	    "\"close\",\"forward_first\":true,\"count\":2}]");
	docs_free(&ds);
	docs_make(&ds, 3, "logs/a/7.tar", TS, 10);
	log_reset();
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	CHECK(docs_with(&ds, ES_ITEM_OK) == 3);
	CHECK(nbulk >= 2);
	CHECK(os_count(INDEX) == before + 6);
	CHECK(eb.kind == ERR_NONE);
	docs_free(&ds);
	es_client_free(es);
}

/* An item answered 429 goes again alone; the others are not re-sent. */
static void
test_retry_item(void)
{
	struct es_client *es = client(proxy_port, INDEX, NULL, NULL);
	struct docs ds;
	struct errbuf eb;

	proxy_rules("[{\"match\":{\"path_re\":\"/_bulk$\"},\"action\":"
	    "\"body_replace\",\"forward_first\":true,\"count\":1,"
	    "\"content_type\":\"application/json\",\"body\":"
	    "\"{\\\"errors\\\":true,\\\"items\\\":["
	    "{\\\"index\\\":{\\\"status\\\":201}},"
	    "{\\\"index\\\":{\\\"status\\\":429,\\\"error\\\":{\\\"type\\\":"
	    "\\\"es_rejected_execution_exception\\\",\\\"reason\\\":"
	    "\\\"queue full\\\"}}},"
	    "{\\\"index\\\":{\\\"status\\\":200}}]}\"}]");
	docs_make(&ds, 3, "logs/a/8.tar", TS, 10);
	errbuf_clear(&eb);
	log_reset();
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	CHECK(docs_with(&ds, ES_ITEM_OK) == 3);
	CHECK(nbulk == 2 && nwarn == 0);
	CHECK(logged_has("bulk of 1 documents"));
	CHECK(logged_has("es_rejected_execution_exception"));
	docs_free(&ds);
	es_client_free(es);
}

/* 401: no retry, everything UNSENT, ERR_AUTH; same for the template. */
static void
test_refused(void)
{
	struct es_client *es = client(proxy_port, INDEX, "user", NULL);
	struct docs ds;
	struct errbuf eb;

	proxy_rules("[{\"match\":{},\"action\":401,\"body\":"
	    "\"{\\\"error\\\":{\\\"type\\\":\\\"security_exception\\\","
	    "\\\"reason\\\":\\\"unable to authenticate\\\"}}\","
	    "\"content_type\":\"application/json\"}]");
	docs_make(&ds, 3, "logs/a/9.tar", TS, 10);
	errbuf_clear(&eb);
	log_reset();
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	CHECK(docs_with(&ds, ES_ITEM_UNSENT) == 3);
	CHECK(nbulk == 1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK(strstr(eb.msg, "HTTP 401 security_exception") != NULL);
	errbuf_clear(&eb);
	CHECK(es_ensure_template(es, &eb) == -1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK(eb.http_status == 401);
	CHECK(!logged_has(PASSWORD) && strstr(eb.msg, PASSWORD) == NULL);
	docs_free(&ds);
	es_client_free(es);
}

/* 413 for the first request: the rest go in halves. */
static void
test_too_large(void)
{
	struct es_client *es = client(proxy_port, INDEX "-big", NULL, NULL);
	struct docs ds;
	struct errbuf eb;

	proxy_rules("[{\"match\":{\"path_re\":\"/_bulk$\"},\"action\":413,"
	    "\"count\":1,\"body\":\"{}\",\"content_type\":"
	    "\"application/json\"}]");
	docs_make(&ds, 1250, "logs/big/2.tar", TS, 4000);
	errbuf_clear(&eb);
	log_reset();
	CHECK(es_bulk(es, ds.d, ds.n, ds.res, &eb) == 0);
	CHECK(docs_with(&ds, ES_ITEM_OK) == 1250);
	CHECK(bulk_first > ES_BULK_MAX_BYTES / 2);
	CHECK(bulk_max_later <= ES_BULK_MAX_BYTES / 2);
	CHECK(nbulk >= 4);	/* 4 MiB refused, 1 MiB, then 2 MiB ones */
	CHECK(os_count(INDEX "-big") == 2600 + 1250);
	docs_free(&ds);
	es_client_free(es);
}

/* A server without _index_template (before 7.8): a legacy template. */
static void
test_legacy_template(void)
{
	struct es_client *es = client(proxy_port, INDEX "-old", NULL, NULL);
	struct strbuf sb = STRBUF_INIT;
	struct errbuf eb;

	proxy_rules("[{\"match\":{\"path_re\":\"^/_index_template/\"},"
	    "\"action\":405,\"body\":\"{}\",\"content_type\":"
	    "\"application/json\"}]");
	errbuf_clear(&eb);
	log_reset();
	CHECK(es_ensure_template(es, &eb) == 0);
	CHECK(os_req("GET", "/_template/" INDEX "-old", NULL, &sb) == 200);
	CHECK(strstr(sb.buf, "\"@timestamp\":{\"type\":\"date\"}") != NULL);
	CHECK(os_req("GET", "/_index_template/" INDEX "-old", NULL,
	    NULL) == 404);
	CHECK(os_req("DELETE", "/_template/" INDEX "-old", NULL, NULL) == 200);
	strbuf_release(&sb);
	es_client_free(es);
}

int
main(void)
{
	struct errbuf eb;
	double t0 = now_s();

	snprintf(root, sizeof(root), "/tmp/s3b-es-unit-%d", (int)getpid());
	snprintf(os_env, sizeof(os_env), "OS_PORT=%d OS_ROOT=%s", OS_PORT,
	    root);
	log_set_handler(capture, NULL);
	log_set_max_level(LOG_LVL_DEBUG);
	if (http_global_init(&eb) == -1 ||
	    (pool = http_pool_new(4, &eb)) == NULL) {
		fprintf(stderr, "test_es: %s\n", eb.msg);
		return 1;
	}
	test_doc_id();
	test_args();
	watchdog_start();
	if (node_start() == -1) {
		CHECK(!"OpenSearch started");
		goto out;
	}
	printf("test_es: OpenSearch up after %.1f s\n", now_s() - t0);
	test_template_and_bulk();
	test_mapping_conflict();
	test_write_block();
	test_large();
	test_down();
	if (proxy_start() == -1) {
		CHECK(!"fault proxy started");
		goto out;
	}
	test_wire();
	test_retry_request();
	test_retry_item();
	test_refused();
	test_too_large();
	test_legacy_template();
 out:
	http_pool_free(pool);
	http_global_cleanup();
	strbuf_release(&logged);
	watchdog_finish();
	printf("test_es: %.1f s in all\n", now_s() - t0);
	CHECK_DONE();
}
