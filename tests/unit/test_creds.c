/*
 * test_creds: the parsers, the chain over a fake environment and temporary
 * shared files, and the HTTP sources against tests/lib/aws_standins.py,
 * which this program starts on 127.0.0.1 and stops at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "check.h"
#include "creds.h"
#include "errbuf.h"
#include "http.h"
#include "strbuf.h"

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

/* Every secret in this file has this in it: messages must never show it. */
#define SECRET		"SeCrEt"

/* A fake environment */

static struct {
	char	*name;
	char	*value;
} envtab[32];
static char tmpdir[64];

static const char *
fake_getenv(const char *name)
{
	size_t i;

	for (i = 0; i < nitems(envtab); i++)
		if (envtab[i].name != NULL && strcmp(envtab[i].name, name) == 0)
			return envtab[i].value;
	return NULL;
}

static void
env_set(const char *name, const char *value)
{
	size_t i, slot = nitems(envtab);

	for (i = 0; i < nitems(envtab); i++) {
		if (envtab[i].name != NULL && strcmp(envtab[i].name, name) == 0)
			slot = i;
		else if (envtab[i].name == NULL && slot == nitems(envtab))
			slot = i;
	}
	if (slot == nitems(envtab))
		abort();
	free(envtab[slot].name);
	free(envtab[slot].value);
	envtab[slot].name = value != NULL ? xstrdup(name) : NULL;
	envtab[slot].value = value != NULL ? xstrdup(value) : NULL;
}

/* Empty, but for HOME and no IMDS: no test may reach 169.254.169.254. */
static void
env_reset(void)
{
	size_t i;

	for (i = 0; i < nitems(envtab); i++) {
		free(envtab[i].name);
		free(envtab[i].value);
		envtab[i].name = envtab[i].value = NULL;
	}
	env_set("HOME", tmpdir);
	env_set("AWS_EC2_METADATA_DISABLED", "true");
}

static char *
tmp_path(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static char *
write_tmp(const char *name, const char *text)
{
	char *path = tmp_path(name);
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1 || write(fd, text, strlen(text)) !=
	    (ssize_t)strlen(text) || close(fd) == -1)
		abort();
	return path;
}

static int
msg_has(const struct errbuf *eb, const char *s)
{
	if (strstr(eb->msg, s) != NULL)
		return 1;
	fprintf(stderr, "message '%s' lacks '%s'\n", eb->msg, s);
	return 0;
}

/* The stand-ins */

static pid_t standin_pid = -1;
static char standin_url[64];
static struct http_pool *pool;
static char *wi_token_path;

static int
standin_start(void)
{
	char line[128];
	struct pollfd pfd;
	size_t len = 0;
	int fds[2], port;
	ssize_t n;

	if (pipe(fds) == -1 || (standin_pid = fork()) == -1)
		return -1;
	if (standin_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execlp("python3", "python3", "tests/lib/aws_standins.py",
		    "--port", "0", "--ecs-auth", "Bearer-" SECRET "-ecs",
		    "--web-identity-token-file", wi_token_path,
		    "--access-key", "ASIASTANDIN0000001",
		    "--secret-key", "standin" SECRET "key", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while (len < sizeof(line) - 1 && memchr(line, '\n', len) == NULL) {
		if (poll(&pfd, 1, 15000) != 1 ||
		    (n = read(fds[0], line + len, sizeof(line) - 1 - len)) <= 0)
			break;
		len += (size_t)n;
	}
	close(fds[0]);
	line[len] = '\0';
	if (sscanf(line, "listening on 127.0.0.1:%d", &port) != 1)
		return -1;
	snprintf(standin_url, sizeof(standin_url), "http://127.0.0.1:%d",
	    port);
	return 0;
}

static void
standin_stop(void)
{
	int status;

	if (standin_pid <= 0)
		return;
	kill(standin_pid, SIGTERM);
	CHECK(waitpid(standin_pid, &status, 0) == standin_pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	standin_pid = -1;
}

/* A control request; the body of the answer in a new string. */
static char *
standin_call(const char *method, const char *path, const char *body)
{
	struct http_request req;
	struct http_response resp;
	struct errbuf eb;
	char *url = xasprintf("%s%s", standin_url, path), *out = NULL;

	http_request_init(&req);
	http_response_init(&resp);
	req.method = method;
	req.url = url;
	if (body != NULL) {
		req.body = body;
		req.body_len = strlen(body);
	}
	req.timeout_ms = 5000;
	if (http_pool_do(pool, &req, &resp, &eb) == 0 && resp.status == 200)
		out = strbuf_detach(&resp.body, NULL);
	else
		fprintf(stderr, "stand-in %s %s failed\n", method, path);
	http_response_release(&resp);
	free(url);
	return out;
}

static void
standin_config(const char *json)
{
	free(standin_call("POST", "/_config", json));
	free(standin_call("POST", "/_reset", ""));
}

static int
standin_count(const char *name)
{
	char *text = standin_call("GET", "/_stats", NULL);
	cJSON *root = text != NULL ? cJSON_Parse(text) : NULL;
	cJSON *item = cJSON_GetObjectItemCaseSensitive(root, name);
	int n = cJSON_IsNumber(item) ? item->valueint : 0;

	cJSON_Delete(root);
	free(text);
	return n;
}

static char *
standin_last(const char *name)
{
	char *text = standin_call("GET", "/_stats", NULL), *out = NULL;
	cJSON *root = text != NULL ? cJSON_Parse(text) : NULL;
	cJSON *last = cJSON_GetObjectItemCaseSensitive(root, "last");
	cJSON *item = cJSON_GetObjectItemCaseSensitive(last, name);

	if (cJSON_IsString(item))
		out = xstrdup(item->valuestring);
	cJSON_Delete(root);
	free(text);
	return out;
}

/* Parsers */

static void
test_parse_time(void)
{
	time_t t = 0;

	CHECK(creds_parse_time("2024-05-01T12:00:00Z", &t) == 0 &&
	    t == 1714564800);
	CHECK(creds_parse_time("2024-05-01T12:00:00.123456Z", &t) == 0 &&
	    t == 1714564800);
	CHECK(creds_parse_time("2024-05-01T14:00:00+02:00", &t) == 0 &&
	    t == 1714564800);
	CHECK(creds_parse_time("2024-05-01T11:30:00-0030", &t) == 0 &&
	    t == 1714564800);
	CHECK(creds_parse_time("2024-02-29T00:00:00Z", &t) == 0);
	CHECK(creds_parse_time("2023-02-29T00:00:00Z", &t) == -1);
	CHECK(creds_parse_time("2024-13-01T00:00:00Z", &t) == -1);
	CHECK(creds_parse_time("2024-05-01T12:00:00", &t) == -1);
	CHECK(creds_parse_time("2024-05-01T12:00:00Zjunk", &t) == -1);
	CHECK(creds_parse_time("2024-05-01", &t) == -1);
	CHECK(creds_parse_time("", &t) == -1);
	CHECK(creds_parse_time("2024-05-01T12:00:00.Z", &t) == -1);
}

static void
test_parse_ini(void)
{
	static const char text[] =
	    "# a comment\n"
	    "; another\n"
	    "[default]\r\n"
	    "aws_access_key_id = AKIDDEFAULT\r\n"
	    "AWS_Secret_Access_Key=" SECRET "default  # inline comment\n"
	    "\n"
	    "[  profile   ci ]   ; trailing comment\n"
	    "region = eu-west-1\n"
	    "s3 =\n"
	    "    region = nested\n"
	    "    addressing_style = path\n"
	    "aws_access_key_id = AKIDFIRST\n"
	    "[other]\n"
	    "region = us-east-2\n"
	    "[profile ci]\n"
	    "aws_access_key_id = AKIDCI\n"
	    "empty =\n";
	const char *keys[] = { "aws_access_key_id", "aws_secret_access_key",
	    "region", "empty", "missing" };
	char *v[5];
	struct errbuf eb;
	size_t i;

	errbuf_clear(&eb);
	CHECK(creds_parse_ini(text, strlen(text), "default", keys, v, 5,
	    &eb) == 1);
	CHECK_STREQ(v[0], "AKIDDEFAULT");
	CHECK_STREQ(v[1], SECRET "default");
	CHECK(v[2] == NULL && v[3] == NULL && v[4] == NULL);
	for (i = 0; i < 5; i++)
		free(v[i]);

	CHECK(creds_parse_ini(text, strlen(text), "profile ci", keys, v, 5,
	    &eb) == 1);
	CHECK_STREQ(v[0], "AKIDCI");		/* the last one wins */
	CHECK(v[1] == NULL);
	CHECK_STREQ(v[2], "eu-west-1");		/* not the nested one */
	CHECK_STREQ(v[3], "");
	CHECK(v[4] == NULL);
	for (i = 0; i < 5; i++)
		free(v[i]);

	CHECK(creds_parse_ini(text, strlen(text), "nope", keys, v, 5,
	    &eb) == 0);
	CHECK(v[0] == NULL && v[2] == NULL);
	CHECK(creds_parse_ini(text, strlen(text), "ci", keys, v, 5,
	    &eb) == 0);
	CHECK(creds_parse_ini("", 0, "default", keys, v, 5, &eb) == 0);
	/* No trailing newline. */
	CHECK(creds_parse_ini("[a]\nregion=x", 12, "a", keys, v, 5, &eb) == 1);
	CHECK_STREQ(v[2], "x");
	free(v[2]);
}

static void
test_parse_ini_bad(void)
{
	static const char *const bad[] = {
	    "aws_access_key_id = AKID\n",			/* no section */
	    "[default]\naws_secret_access_key " SECRET "\n",	/* no '=' */
	    "[default\nregion = x\n",				/* no ']' */
	    "[]\nregion = x\n",					/* empty */
	    "[default]\n = " SECRET "\n",			/* no name */
	    "[default] junk\n",					/* after ']' */
	};
	static const char nul[] = "[a]\nx=1\0y";
	static const char late[] = "[default]\naws_secret_access_key="
	    SECRET "\nbroken\n";
	const char *keys[] = { "aws_secret_access_key" };
	char *v[1];
	struct errbuf eb;
	size_t i;

	for (i = 0; i < nitems(bad); i++) {
		errbuf_clear(&eb);
		v[0] = (char *)1;
		CHECK(creds_parse_ini(bad[i], strlen(bad[i]), "default", keys,
		    v, 1, &eb) == -1);
		CHECK(eb.kind == ERR_CONFIG);
		CHECK(strstr(eb.msg, "line ") != NULL);
		CHECK(strstr(eb.msg, SECRET) == NULL);
		CHECK(v[0] == NULL);
	}
	CHECK(creds_parse_ini(nul, sizeof(nul) - 1, "a", keys, v, 1, &eb) ==
	    -1);
	/* The error is reported even when a value was already found. */
	CHECK(creds_parse_ini(late, strlen(late), "default", keys, v, 1,
	    &eb) == -1);
	CHECK(msg_has(&eb, "line 3"));
	CHECK(v[0] == NULL);
}

static void
test_parse_json(void)
{
	static const char good[] = "{\"Code\":\"Success\","
	    "\"Type\":\"AWS-HMAC\","
	    "\"AccessKeyId\":\"ASIAJSON\",\"SecretAccessKey\":\"" SECRET "j\","
	    "\"Token\":\"tok" SECRET "\",\"Expiration\":"
	    "\"2024-05-01T12:00:00Z\"}";
	static const char ecs[] = "{\"AccessKeyId\":\"AKIDECS\","
	    "\"SecretAccessKey\":\"s\",\"Token\":\"\"}";
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"AccessKeyId\":\"A\"}",
	    "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":7}",
	    "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET "\","
	    "\"Expiration\":\"tomorrow\"}",
	    "{\"AccessKeyId\":\"A B\",\"SecretAccessKey\":\"" SECRET "\"}",
	    "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET "\n\"}",
	    "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"no\","
	    "\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET "\"}",
	    "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET "\"",
	};
	struct creds c;
	struct errbuf eb;
	size_t i;

	memset(&c, 0, sizeof(c));
	CHECK(creds_parse_json(good, strlen(good), &c, &eb) == 0);
	CHECK_STREQ(c.access_key, "ASIAJSON");
	CHECK_STREQ(c.secret_key, SECRET "j");
	CHECK_STREQ(c.session_token, "tok" SECRET);
	CHECK(c.expires == 1714564800);
	creds_release(&c);
	CHECK(c.access_key == NULL && c.secret_key == NULL);
	creds_release(&c);

	/* ECS: no Code; an empty Token is none; no Expiration is never. */
	CHECK(creds_parse_json(ecs, strlen(ecs), &c, &eb) == 0);
	CHECK(c.session_token == NULL && c.expires == 0);
	creds_release(&c);

	for (i = 0; i < nitems(bad); i++) {
		errbuf_clear(&eb);
		CHECK(creds_parse_json(bad[i], strlen(bad[i]), &c, &eb) == -1);
		CHECK(eb.kind == ERR_AUTH);
		CHECK(strstr(eb.msg, SECRET) == NULL);
		CHECK(c.access_key == NULL);
	}
	CHECK(creds_parse_json(bad[7], strlen(bad[7]), &c, &eb) == -1);
	CHECK(msg_has(&eb, "AssumeRoleUnauthorizedAccess"));
}

static void
test_parse_sts_xml(void)
{
	static const char good[] =
	    "<?xml version=\"1.0\"?>\n"
	    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts."
	    "amazonaws.com/doc/2011-06-15/\">\n"
	    " <AssumeRoleWithWebIdentityResult>\n"
	    "  <AssumedRoleUser><Arn>arn:x</Arn>"
	    "<AccessKeyId>WRONGPLACE</AccessKeyId></AssumedRoleUser>\n"
	    "  <Credentials>\n"
	    "   <SessionToken>FwoG" SECRET "tok</SessionToken>\n"
	    "   <SecretAccessKey>" SECRET "x</SecretAccessKey>\n"
	    "   <Expiration>2024-05-01T12:00:00Z</Expiration>\n"
	    "   <AccessKeyId>ASIASTS</AccessKeyId>\n"
	    "  </Credentials>\n"
	    " </AssumeRoleWithWebIdentityResult>\n"
	    "</AssumeRoleWithWebIdentityResponse>\n";
	static const char error[] =
	    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/"
	    "\"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
	    "<Message>Token expired</Message></Error></ErrorResponse>";
	static const char *const bad[] = {
	    "",
	    "not xml",
	    "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentity"
	    "Result><Credentials><AccessKeyId>A</AccessKeyId>",
	    "<Other><AssumeRoleWithWebIdentityResult><Credentials>"
	    "<AccessKeyId>A</AccessKeyId><SecretAccessKey>" SECRET
	    "</SecretAccessKey></Credentials></AssumeRoleWithWebIdentity"
	    "Result></Other>",
	    "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentity"
	    "Result><Credentials><AccessKeyId>A</AccessKeyId></Credentials>"
	    "</AssumeRoleWithWebIdentityResult>"
	    "</AssumeRoleWithWebIdentityResponse>",
	    "<!DOCTYPE x [<!ENTITY a \"" SECRET "\">]>"
	    "<AssumeRoleWithWebIdentityResponse/>",
	};
	struct creds c;
	struct errbuf eb;
	size_t i;

	memset(&c, 0, sizeof(c));
	CHECK(creds_parse_sts_xml(good, strlen(good), &c, &eb) == 0);
	CHECK_STREQ(c.access_key, "ASIASTS");
	CHECK_STREQ(c.secret_key, SECRET "x");
	CHECK_STREQ(c.session_token, "FwoG" SECRET "tok");
	CHECK(c.expires == 1714564800);
	creds_release(&c);

	CHECK(creds_parse_sts_xml(error, strlen(error), &c, &eb) == -1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK(msg_has(&eb, "InvalidIdentityToken: Token expired"));
	for (i = 0; i < nitems(bad); i++) {
		errbuf_clear(&eb);
		CHECK(creds_parse_sts_xml(bad[i], strlen(bad[i]), &c, &eb) ==
		    -1);
		CHECK(eb.kind == ERR_AUTH);
		CHECK(strstr(eb.msg, SECRET) == NULL);
		CHECK(c.access_key == NULL);
	}
	CHECK(creds_parse_sts_xml(bad[5], strlen(bad[5]), &c, &eb) == -1);
	CHECK(msg_has(&eb, "DOCTYPE"));
}

/* The chain without HTTP */

/* One creds_get with a new provider; the provider is freed. */
static int
get_once(struct creds *c, struct errbuf *eb)
{
	struct creds_provider *p = creds_provider_new(fake_getenv, pool, eb);
	int rc;

	memset(c, 0, sizeof(*c));
	errbuf_clear(eb);
	rc = p != NULL ? creds_get(p, time(NULL), c, eb) : -1;
	creds_provider_free(p);
	return rc;
}

static void
test_env(void)
{
	struct creds c;
	struct errbuf eb;

	env_reset();
	env_set("AWS_ACCESS_KEY_ID", "AKIDENV");
	env_set("AWS_SECRET_ACCESS_KEY", SECRET "env");
	CHECK(get_once(&c, &eb) == 0);
	CHECK_STREQ(c.source, "env");
	CHECK_STREQ(c.access_key, "AKIDENV");
	CHECK_STREQ(c.secret_key, SECRET "env");
	CHECK(c.session_token == NULL && c.expires == 0);
	creds_release(&c);

	env_set("AWS_SESSION_TOKEN", "tok" SECRET);
	CHECK(get_once(&c, &eb) == 0);
	CHECK_STREQ(c.session_token, "tok" SECRET);
	creds_release(&c);

	/* An empty variable is unset: half a pair is an error. */
	env_set("AWS_ACCESS_KEY_ID", "");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK_STREQ(eb.msg, "AWS credentials from env: "
	    "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
	CHECK(strstr(eb.msg, SECRET) == NULL);
	CHECK(c.access_key == NULL);
}

static void
test_nothing(void)
{
	struct creds c;
	struct errbuf eb;

	env_reset();
	CHECK(get_once(&c, &eb) == -1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK(msg_has(&eb, "no AWS credentials: env (not set), web-identity "
	    "(not configured), profile 'default' (not found), ecs (not "
	    "configured), imds (AWS_EC2_METADATA_DISABLED)"));
	env_set("AWS_ROLE_ARN", "arn:aws:iam::1:role/x");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(msg_has(&eb, "web-identity (AWS_ROLE_ARN without "
	    "AWS_WEB_IDENTITY_TOKEN_FILE)"));
}

static void
write_profiles(void)
{
	char *dir = tmp_path(".aws");

	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		abort();
	free(dir);
	free(write_tmp(".aws/credentials",
	    "# test profiles\n"
	    "[default]\n"
	    "aws_access_key_id = AKIDDEFAULT\n"
	    "aws_secret_access_key = " SECRET "default\n"
	    "\n"
	    "[ci]\n"
	    "aws_access_key_id=AKIDCI\n"
	    "aws_secret_access_key=" SECRET "ci\n"
	    "aws_session_token=tok" SECRET "ci\n"));
	free(write_tmp(".aws/config",
	    "[default]\n"
	    "region = eu-west-1\n"
	    "[profile other]\n"
	    "region = us-west-2\n"
	    "aws_access_key_id = AKIDOTHER\n"
	    "aws_secret_access_key = " SECRET "other\n"
	    "s3 =\n"
	    "    region = nested\n"
	    "[profile assumer]\n"
	    "role_arn = arn:aws:iam::123456789012:role/x\n"
	    "source_profile = default\n"
	    "[profile half]\n"
	    "aws_access_key_id = AKIDHALF\n"
	    "[profile regiononly]\n"
	    "region = ap-south-1\n"));
	free(write_tmp("broken", "[default]\naws_access_key_id = A\n"
	    "aws_secret_access_key " SECRET "\n"));
	free(write_tmp("alt", "[default]\naws_access_key_id = AKIDALT\n"
	    "aws_secret_access_key = " SECRET "alt\n"));
}

static void
test_profile(void)
{
	struct creds c;
	struct errbuf eb;

	write_profiles();
	env_reset();
	CHECK(get_once(&c, &eb) == 0);
	CHECK_STREQ(c.source, "profile");
	CHECK_STREQ(c.access_key, "AKIDDEFAULT");
	CHECK_STREQ(c.secret_key, SECRET "default");
	creds_release(&c);

	env_set("AWS_PROFILE", "ci");
	CHECK(get_once(&c, &eb) == 0);
	CHECK_STREQ(c.access_key, "AKIDCI");
	CHECK_STREQ(c.session_token, "tok" SECRET "ci");
	creds_release(&c);

	env_set("AWS_PROFILE", "other");	/* from the config file */
	CHECK(get_once(&c, &eb) == 0);
	CHECK_STREQ(c.access_key, "AKIDOTHER");
	creds_release(&c);

	env_set("AWS_PROFILE", "assumer");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK(msg_has(&eb, "uses 'role_arn'"));

	env_set("AWS_PROFILE", "half");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(msg_has(&eb, "no secret access key"));

	env_set("AWS_PROFILE", "missing");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(msg_has(&eb, "AWS_PROFILE 'missing' is in neither"));

	/* A profile without keys falls through, like the default one. */
	env_set("AWS_PROFILE", "regiononly");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(msg_has(&eb, "profile 'regiononly' (no keys)"));

	/* The environment comes first. */
	env_set("AWS_PROFILE", "ci");
	env_set("AWS_ACCESS_KEY_ID", "AKIDENV");
	env_set("AWS_SECRET_ACCESS_KEY", SECRET "env");
	CHECK(get_once(&c, &eb) == 0);
	CHECK_STREQ(c.source, "env");
	creds_release(&c);

	env_reset();
	env_set("AWS_SHARED_CREDENTIALS_FILE", "~/alt");
	CHECK(get_once(&c, &eb) == 0);
	CHECK_STREQ(c.access_key, "AKIDALT");
	creds_release(&c);

	env_set("AWS_SHARED_CREDENTIALS_FILE", "~/broken");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK(msg_has(&eb, "broken': line 3"));
	CHECK(strstr(eb.msg, SECRET) == NULL);
}

static void
test_profile_region(void)
{
	struct errbuf eb;
	char *region = (char *)1;

	env_reset();
	CHECK(creds_profile_region(fake_getenv, &region, &eb) == 0);
	CHECK_STREQ(region, "eu-west-1");
	free(region);
	env_set("AWS_PROFILE", "other");
	CHECK(creds_profile_region(fake_getenv, &region, &eb) == 0);
	CHECK_STREQ(region, "us-west-2");
	free(region);
	env_set("AWS_PROFILE", "ci");
	CHECK(creds_profile_region(fake_getenv, &region, &eb) == 0);
	CHECK(region == NULL);
	env_set("AWS_CONFIG_FILE", "/nonexistent/config");
	CHECK(creds_profile_region(fake_getenv, &region, &eb) == 0);
	CHECK(region == NULL);
	env_set("AWS_CONFIG_FILE", "~/broken");
	env_set("AWS_PROFILE", NULL);
	CHECK(creds_profile_region(fake_getenv, &region, &eb) == -1);
	CHECK(eb.kind == ERR_CONFIG);
}

/* The HTTP sources, against the stand-ins */

static void
test_standin_itself(void)
{
	struct http_request req;
	struct http_response resp;
	struct errbuf eb;
	char *url = xasprintf("%s/latest/meta-data/iam/security-credentials/",
	    standin_url);

	http_request_init(&req);
	http_response_init(&resp);
	req.method = "GET";
	req.url = url;
	CHECK(http_pool_do(pool, &req, &resp, &eb) == 0);
	CHECK(resp.status == 401);	/* IMDSv2: no token, no answer */
	http_response_release(&resp);
	free(url);
}

static void
use_imds(void)
{
	env_reset();
	env_set("AWS_EC2_METADATA_DISABLED", NULL);
	env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", standin_url);
	env_set("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials");
	env_set("AWS_CONFIG_FILE", "/nonexistent/config");
}

static void
test_imds(void)
{
	struct creds_provider *p;
	struct creds c;
	struct errbuf eb;
	time_t t0 = time(NULL);

	use_imds();
	standin_config("{\"expires_in\": 1200, \"fail\": {}}");
	p = creds_provider_new(fake_getenv, pool, &eb);
	CHECK(creds_get(p, t0, &c, &eb) == 0);
	CHECK_STREQ(c.source, "imds");
	CHECK_STREQ(c.access_key, "ASIASTANDIN0000001");
	CHECK_STREQ(c.secret_key, "standin" SECRET "key");
	CHECK(c.session_token == NULL);
	CHECK(c.expires >= t0 + 1190 && c.expires <= t0 + 1210);
	creds_release(&c);
	CHECK(standin_count("imds_token") == 1);
	CHECK(standin_count("imds_role") == 1);
	CHECK(standin_count("imds_creds") == 1);
	CHECK(standin_count("imds_unauthorized") == 0);

	/* Cached while far from expiry. */
	CHECK(creds_get(p, t0 + 600, &c, &eb) == 0);
	creds_release(&c);
	CHECK(standin_count("imds_creds") == 1);

	/* Inside the 5-minute margin: fetched again, same session token. */
	CHECK(creds_get(p, t0 + 1200 - 290, &c, &eb) == 0);
	creds_release(&c);
	CHECK(standin_count("imds_creds") == 2);
	CHECK(standin_count("imds_token") == 1);

	/* A revoked session token: 401, a new token, then the answer. */
	standin_config("{\"revoke_imds_tokens\": true}");
	CHECK(creds_get(p, t0 + 950, &c, &eb) == 0);
	CHECK_STREQ(c.source, "imds");
	creds_release(&c);
	CHECK(standin_count("imds_unauthorized") == 1);
	CHECK(standin_count("imds_token") == 1);
	CHECK(standin_count("imds_creds") == 1);
	creds_provider_free(p);
}

static void
test_imds_near_expiry(void)
{
	struct creds_provider *p;
	struct creds c;
	struct errbuf eb;
	time_t t0 = time(NULL);

	use_imds();
	standin_config("{\"expires_in\": 120, \"fail\": {}}");
	/* The provider's own pool this time. */
	p = creds_provider_new(fake_getenv, NULL, &eb);
	CHECK(creds_get(p, t0, &c, &eb) == 0);
	creds_release(&c);
	CHECK(creds_get(p, t0 + 10, &c, &eb) == 0);	/* not asked again */
	creds_release(&c);
	CHECK(standin_count("imds_creds") == 1);
	CHECK(creds_get(p, t0 + CREDS_RETRY_SECS + 1, &c, &eb) == 0);
	creds_release(&c);
	CHECK(standin_count("imds_creds") == 2);
	/* Past expiry, and what comes back is already expired. */
	CHECK(creds_get(p, t0 + 200, &c, &eb) == -1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK(msg_has(&eb, "already expired"));
	CHECK(c.access_key == NULL);
	creds_provider_free(p);
}

static void
busy_done(void *arg, const struct http_request *req,
    struct http_response *resp)
{
	(void)req;
	(void)resp;
	*(int *)arg = 1;
}

/* A busy shared pool is left alone: no other callback runs inside. */
static void
test_busy_pool(void)
{
	struct creds_provider *p;
	struct http_request req;
	struct http_response resp;
	struct creds c;
	struct errbuf eb;
	char *url = xasprintf("%s/_stats", standin_url);
	int done = 0;

	use_imds();
	standin_config("{\"expires_in\": 3600, \"fail\": {}}");
	http_request_init(&req);
	http_response_init(&resp);
	req.method = "GET";
	req.url = url;
	CHECK(http_pool_add(pool, &req, &resp, busy_done, &done, &eb) == 0);
	p = creds_provider_new(fake_getenv, pool, &eb);
	CHECK(creds_get(p, time(NULL), &c, &eb) == 0);
	CHECK_STREQ(c.source, "imds");
	creds_release(&c);
	CHECK(done == 0);
	CHECK(http_pool_pending(pool) == 1);
	while (!done && http_pool_run(pool, 1000, &eb) != -1)
		;
	CHECK(done == 1 && resp.status == 200);
	creds_provider_free(p);
	http_response_release(&resp);
	free(url);
}

static void
test_imds_failures(void)
{
	struct creds_provider *p;
	struct creds c;
	struct errbuf eb;
	time_t t0 = time(NULL);

	/* Disabled: not a single request. */
	use_imds();
	env_set("AWS_EC2_METADATA_DISABLED", "TRUE");
	standin_config("{\"expires_in\": 3600, \"fail\": {}}");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(msg_has(&eb, "imds (AWS_EC2_METADATA_DISABLED)"));
	CHECK(standin_count("imds_token") == 0);

	/* An HTTP error: remembered for CREDS_RETRY_SECS, then retried. */
	use_imds();
	standin_config("{\"fail\": {\"imds_token\": 500}}");
	p = creds_provider_new(fake_getenv, pool, &eb);
	CHECK(creds_get(p, t0, &c, &eb) == -1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK(msg_has(&eb, "no AWS credentials: "));
	CHECK(msg_has(&eb, "imds (PUT '"));
	CHECK(msg_has(&eb, "HTTP 500"));
	CHECK(creds_get(p, t0 + 1, &c, &eb) == -1);
	CHECK(standin_count("imds_token") == 1);
	CHECK(creds_get(p, t0 + CREDS_RETRY_SECS + 1, &c, &eb) == -1);
	CHECK(standin_count("imds_token") == 2);
	standin_config("{\"fail\": {}}");
	CHECK(creds_get(p, t0 + 2 * CREDS_RETRY_SECS + 2, &c, &eb) == 0);
	creds_release(&c);
	creds_provider_free(p);

	/* No answer at all (not on EC2): skipped for the provider's life. */
	standin_config("{\"fail\": {\"imds_token\": 0}}");
	p = creds_provider_new(fake_getenv, pool, &eb);
	CHECK(creds_get(p, t0, &c, &eb) == -1);
	/* libcurl tries once more when a reused connection dies. */
	CHECK(standin_count("imds_token") >= 1);
	standin_config("{\"fail\": {}}");
	CHECK(creds_get(p, t0 + 1000, &c, &eb) == -1);
	CHECK(msg_has(&eb, "imds (no answer earlier in this run)"));
	CHECK(standin_count("imds_token") == 0);
	creds_provider_free(p);

	/* Nothing listens there. */
	env_set("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(msg_has(&eb, "imds (PUT 'http://127.0.0.1:1/latest/api/token'"));
}

static void
test_ecs(void)
{
	struct creds_provider *p;
	struct creds c;
	struct errbuf eb;
	time_t t0 = time(NULL);
	char *url = xasprintf("%s/v2/credentials/abc", standin_url);
	char *tok = write_tmp("ecs-token", "Bearer-" SECRET "-ecs\n");

	use_imds();	/* ECS comes first: IMDS is not asked */
	env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tok);
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored");
	standin_config("{\"expires_in\": 1200, \"session_token\": \"FQo"
	    SECRET "\", \"fail\": {}}");
	p = creds_provider_new(fake_getenv, pool, &eb);
	CHECK(creds_get(p, t0, &c, &eb) == 0);
	CHECK_STREQ(c.source, "ecs");
	CHECK_STREQ(c.access_key, "ASIASTANDIN0000001");
	CHECK_STREQ(c.session_token, "FQo" SECRET);
	creds_release(&c);
	CHECK(standin_count("ecs") == 1);
	CHECK(standin_count("ecs_unauthorized") == 0);
	CHECK(standin_count("imds_token") == 0);

	/* A refresh that fails keeps the current ones while they last. */
	standin_config("{\"fail\": {\"ecs\": 500}}");
	CHECK(creds_get(p, t0 + 1200 - 100, &c, &eb) == 0);
	CHECK_STREQ(c.source, "ecs");
	creds_release(&c);
	CHECK(standin_count("ecs") == 3);	/* three attempts */
	CHECK(creds_get(p, t0 + 1200 - 90, &c, &eb) == 0);
	creds_release(&c);
	CHECK(standin_count("ecs") == 3);	/* not before the retry */
	CHECK(creds_get(p, t0 + 1300, &c, &eb) == -1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK(msg_has(&eb, "AWS credentials from ecs: GET '"));
	CHECK(msg_has(&eb, "HTTP 500"));
	standin_config("{\"expires_in\": 3600, \"fail\": {}}");
	CHECK(creds_get(p, t0 + 1400, &c, &eb) == 0);
	creds_release(&c);
	creds_provider_free(p);

	/* The token from the variable, and a wrong one. */
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", NULL);
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer-" SECRET "-ecs");
	CHECK(get_once(&c, &eb) == 0);
	creds_release(&c);
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong" SECRET);
	CHECK(get_once(&c, &eb) == -1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK(msg_has(&eb, "HTTP 401"));
	CHECK(strstr(eb.msg, SECRET) == NULL);
	CHECK(standin_count("imds_token") == 0);

	free(tok);
	tok = write_tmp("ecs-token", "\n");
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tok);
	CHECK(get_once(&c, &eb) == -1);
	CHECK(msg_has(&eb, "authorization token is empty"));
	env_set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", NULL);

	/* Plain http elsewhere than a loopback is refused unasked. */
	env_set("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.1/x");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(msg_has(&eb, "AWS_CONTAINER_CREDENTIALS_FULL_URI"));
	free(url);
	free(tok);
}

static void
test_web_identity(void)
{
	struct creds_provider *p;
	struct creds c;
	struct errbuf eb;
	time_t t0 = time(NULL);
	char *name, want[64], *wrong;

	use_imds();
	env_set("AWS_WEB_IDENTITY_TOKEN_FILE", wi_token_path);
	env_set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/s3-batch");
	env_set("AWS_ENDPOINT_URL_STS", standin_url);
	/* A profile that would work: web identity comes first. */
	env_set("AWS_SHARED_CREDENTIALS_FILE", NULL);
	env_set("AWS_PROFILE", "ci");
	standin_config("{\"expires_in\": 1200, \"session_token\": \"IQo"
	    SECRET "\", \"fail\": {}}");
	p = creds_provider_new(fake_getenv, pool, &eb);
	CHECK(creds_get(p, t0, &c, &eb) == 0);
	CHECK_STREQ(c.source, "web-identity");
	CHECK_STREQ(c.access_key, "ASIASTANDIN0000001");
	CHECK_STREQ(c.session_token, "IQo" SECRET);
	CHECK(c.expires >= t0 + 1190 && c.expires <= t0 + 1210);
	creds_release(&c);
	CHECK(standin_count("sts") == 1);
	CHECK(standin_count("sts_denied") == 0);
	snprintf(want, sizeof(want), "s3-batch-%ld", (long)getpid());
	name = standin_last("sts_session_name");
	CHECK_STREQ(name, want);
	free(name);

	CHECK(creds_get(p, t0 + 600, &c, &eb) == 0);
	creds_release(&c);
	CHECK(standin_count("sts") == 1);
	CHECK(creds_get(p, t0 + 1200 - 290, &c, &eb) == 0);
	creds_release(&c);
	CHECK(standin_count("sts") == 2);
	creds_provider_free(p);

	env_set("AWS_ROLE_SESSION_NAME", "nightly-run");
	CHECK(get_once(&c, &eb) == 0);
	creds_release(&c);
	name = standin_last("sts_session_name");
	CHECK_STREQ(name, "nightly-run");
	free(name);

	/* A token STS refuses: its Code in the message, not the token. */
	wrong = write_tmp("wrong-token", "eyJ" SECRET ".wrong\n");
	env_set("AWS_WEB_IDENTITY_TOKEN_FILE", wrong);
	CHECK(get_once(&c, &eb) == -1);
	CHECK(eb.kind == ERR_AUTH);
	CHECK(msg_has(&eb, "AWS credentials from web-identity: POST '"));
	CHECK(msg_has(&eb, "HTTP 400: STS says InvalidIdentityToken"));
	CHECK(strstr(eb.msg, SECRET) == NULL);
	CHECK(standin_count("imds_token") == 0);

	env_set("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(msg_has(&eb, "read AWS_WEB_IDENTITY_TOKEN_FILE"));
	free(wrong);
}

static void
test_sts_endpoint(void)
{
	struct creds c;
	struct errbuf eb;

	/* AWS_ENDPOINT_URL serves STS too, as in the SDKs. */
	env_reset();
	env_set("AWS_WEB_IDENTITY_TOKEN_FILE", wi_token_path);
	env_set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/s3-batch");
	env_set("AWS_ENDPOINT_URL", standin_url);
	standin_config("{\"fail\": {}}");
	CHECK(get_once(&c, &eb) == 0);
	CHECK_STREQ(c.source, "web-identity");
	creds_release(&c);
	CHECK(standin_count("sts") == 1);
	/* A bad region is caught before any request leaves. */
	env_set("AWS_ENDPOINT_URL", NULL);
	env_set("AWS_REGION", "eu west");
	CHECK(get_once(&c, &eb) == -1);
	CHECK(msg_has(&eb, "region 'eu west'"));
}

static void
cleanup_tmp(void)
{
	static const char *const names[] = { ".aws/credentials",
	    ".aws/config", ".aws", "broken", "alt", "ecs-token",
	    "wrong-token", "wi-token" };
	char *path;
	size_t i;

	for (i = 0; i < nitems(names); i++) {
		path = tmp_path(names[i]);
		if (unlink(path) == -1)
			rmdir(path);
		free(path);
	}
	CHECK(rmdir(tmpdir) == 0);
}

int
main(void)
{
	struct errbuf eb;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_creds.XXXXXX");
	if (mkdtemp(tmpdir) == NULL || http_global_init(&eb) == -1 ||
	    (pool = http_pool_new(4, &eb)) == NULL)
		return 2;
	wi_token_path = write_tmp("wi-token", "eyJhbGciOiJSUzI1NiJ9." SECRET
	    ".sig\n");

	test_parse_time();
	test_parse_ini();
	test_parse_ini_bad();
	test_parse_json();
	test_parse_sts_xml();
	test_env();
	test_nothing();
	test_profile();
	test_profile_region();

	CHECK(standin_start() == 0);
	if (standin_pid > 0 && standin_url[0] != '\0') {
		test_standin_itself();
		test_imds();
		test_imds_near_expiry();
		test_busy_pool();
		test_imds_failures();
		test_ecs();
		test_web_identity();
		test_sts_endpoint();
	}
	standin_stop();

	env_reset();
	env_set("HOME", NULL);
	env_set("AWS_EC2_METADATA_DISABLED", NULL);
	http_pool_free(pool);
	http_global_cleanup();
	free(wi_token_path);
	cleanup_tmp();
	CHECK_DONE();
}
