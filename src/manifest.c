/*
 * manifest: cJSON in, cJSON out. Raw names travel as base64 in the spool,
 * so a name that is not UTF-8 survives a crash byte for byte.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>
#include <openssl/evp.h>
#include <uuid.h>

#include "es.h"
#include "manifest.h"
#include "names.h"

void
manifest_uuid(char out[37])
{
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

void
manifest_iso8601(time_t t, char out[32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "1970-01-01T00:00:00Z");
}

void
manifest_init(struct manifest *m, const char *tool, const char *run_id,
    const char *host, time_t sealed_at)
{
	memset(m, 0, sizeof(*m));
	manifest_uuid(m->id);
	snprintf(m->run_id, sizeof(m->run_id), "%s", run_id);
	m->tool = strcmp(tool, "s3-batch") == 0 ? "s3-batch" : "s3-sync";
	m->host = xstrdup(host);
	m->sealed_at = sealed_at;
}

static void
entry_release(struct manifest_entry *e)
{
	free(e->bucket);
	free(e->path);
	free(e->object_key);
	free(e->entry);
	free(e->url);
}

void
manifest_release(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		entry_release(&m->e[i]);
	free(m->e);
	free(m->host);
	free(m->archive_bucket);
	free(m->archive_key);
	memset(m, 0, sizeof(*m));
}

struct manifest_entry *
manifest_add(struct manifest *m, const char *bucket, const char *path,
    size_t path_len, const char *entry, size_t entry_len,
    const struct stat *st)
{
	struct manifest_entry *e;

	if (m->n == m->alloc) {
		m->alloc = m->alloc ? m->alloc * 2 : 16;
		m->e = xrealloc(m->e, m->alloc * sizeof(*m->e));
	}
	e = &m->e[m->n++];
	memset(e, 0, sizeof(*e));
	e->bucket = xstrdup(bucket);
	e->path = xstrndup(path, path_len);
	e->path_len = path_len;
	e->entry = xstrndup(entry, entry_len);
	e->entry_len = entry_len;
	e->size = (uint64_t)st->st_size;
	e->mtime = (int64_t)st->st_mtim.tv_sec;
	e->dev = (uint64_t)st->st_dev;
	e->ino = (uint64_t)st->st_ino;
	e->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 +
	    st->st_mtim.tv_nsec;
	e->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 +
	    st->st_ctim.tv_nsec;
	e->nlink = (uint64_t)st->st_nlink;
	return e;
}

/* ---- base64 and hex for the spool form ---- */

static char *
b64_encode(const char *s, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s,
	    (int)len);
	return out;
}

static char *
b64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s);
	unsigned char *out = xmalloc(3 * (n / 4) + 1);
	int got;

	if (n % 4 != 0 ||
	    (got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n)) < 0) {
		free(out);
		return NULL;
	}
	if (n >= 1 && s[n - 1] == '=')
		got--;
	if (n >= 2 && s[n - 2] == '=')
		got--;
	out[got] = '\0';
	*len = (size_t)got;
	return (char *)out;
}

static int
hex_decode(const char *s, unsigned char *out, size_t n)
{
	size_t i;

	if (strlen(s) != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned int v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* ---- the spool form ---- */

static cJSON *
entry_to_json(const struct manifest_entry *e)
{
	cJSON *o = cJSON_CreateObject();
	char *p = b64_encode(e->path, e->path_len);
	char *n = b64_encode(e->entry, e->entry_len);
	char hex[65];

	hex_encode(e->sha256, 32, hex);
	cJSON_AddStringToObject(o, "bucket", e->bucket);
	cJSON_AddStringToObject(o, "path_b64", p);
	cJSON_AddStringToObject(o, "entry_b64", n);
	cJSON_AddStringToObject(o, "object_key", e->object_key ? e->object_key : "");
	cJSON_AddStringToObject(o, "url", e->url ? e->url : "");
	cJSON_AddNumberToObject(o, "size", (double)e->size);
	cJSON_AddNumberToObject(o, "mtime", (double)e->mtime);
	cJSON_AddStringToObject(o, "sha256", hex);
	cJSON_AddNumberToObject(o, "data_offset", (double)e->data_offset);
	cJSON_AddNumberToObject(o, "dev", (double)e->dev);
	cJSON_AddNumberToObject(o, "ino", (double)e->ino);
	/* nanoseconds exceed a double's exact range: keep them as text */
	{
		char buf[32];

		snprintf(buf, sizeof(buf), "%lld", (long long)e->mtime_ns);
		cJSON_AddStringToObject(o, "mtime_ns", buf);
		snprintf(buf, sizeof(buf), "%lld", (long long)e->ctime_ns);
		cJSON_AddStringToObject(o, "ctime_ns", buf);
	}
	cJSON_AddNumberToObject(o, "nlink", (double)e->nlink);
	free(p);
	free(n);
	return o;
}

void
manifest_to_json(const struct manifest *m, struct strbuf *out)
{
	cJSON *root = cJSON_CreateObject(), *arr;
	char ts[32], *txt;
	size_t i;

	manifest_iso8601(m->sealed_at, ts);
	cJSON_AddNumberToObject(root, "version", 1);
	cJSON_AddStringToObject(root, "batch", m->id);
	cJSON_AddStringToObject(root, "run_id", m->run_id);
	cJSON_AddStringToObject(root, "tool", m->tool);
	cJSON_AddStringToObject(root, "host", m->host);
	cJSON_AddNumberToObject(root, "sealed_at", (double)m->sealed_at);
	cJSON_AddStringToObject(root, "timestamp", ts);
	if (m->archive_key != NULL) {
		cJSON *a = cJSON_AddObjectToObject(root, "archive");

		cJSON_AddStringToObject(a, "bucket", m->archive_bucket);
		cJSON_AddStringToObject(a, "key", m->archive_key);
		cJSON_AddNumberToObject(a, "size", (double)m->archive_size);
	}
	arr = cJSON_AddArrayToObject(root, "entries");
	for (i = 0; i < m->n; i++)
		cJSON_AddItemToArray(arr, entry_to_json(&m->e[i]));
	txt = cJSON_PrintUnformatted(root);
	strbuf_adds(out, txt);
	strbuf_addch(out, '\n');
	cJSON_free(txt);
	cJSON_Delete(root);
}

static const char *
jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Ranges of the integer types numbers are cast to: beyond, a cast is UB. */
#define JS64	-9223372036854775808.0, 9223372036854775808.0
#define JU64	0.0, 18446744073709551616.0
/* 10000-01-01: a batch was sealed by this tool, in a 4-digit year */
#define SEALED_MAX	253402300800.0

/* A number in [lo, hi). */
static int
jnum(const cJSON *o, const char *name, double lo, double hi, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo &&
	    v->valuedouble < hi))
		return -1;
	*out = v->valuedouble;
	return 0;
}

static int
entry_from_json(struct manifest *m, const cJSON *o)
{
	const char *bucket = jstr(o, "bucket"), *pb = jstr(o, "path_b64");
	const char *nb = jstr(o, "entry_b64"), *sha = jstr(o, "sha256");
	const char *mns = jstr(o, "mtime_ns"), *cns = jstr(o, "ctime_ns");
	double size, mtime, off, dev, ino, nlink;
	char *path = NULL, *name = NULL;
	size_t plen, nlen;
	struct manifest_entry *e;
	struct stat st;
	int rc = -1;

	if (bucket == NULL || pb == NULL || nb == NULL || sha == NULL ||
	    mns == NULL || cns == NULL ||
	    jnum(o, "size", JU64, &size) == -1 ||
	    jnum(o, "mtime", JS64, &mtime) == -1 ||
	    jnum(o, "data_offset", JU64, &off) == -1 ||
	    jnum(o, "dev", JU64, &dev) == -1 ||
	    jnum(o, "ino", JU64, &ino) == -1 ||
	    jnum(o, "nlink", JU64, &nlink) == -1)
		goto out;
	if ((path = b64_decode(pb, &plen)) == NULL ||
	    (name = b64_decode(nb, &nlen)) == NULL)
		goto out;
	memset(&st, 0, sizeof(st));
	e = manifest_add(m, bucket, path, plen, name, nlen, &st);
	e->size = (uint64_t)size;
	e->mtime = (int64_t)mtime;
	e->data_offset = (uint64_t)off;
	e->dev = (uint64_t)dev;
	e->ino = (uint64_t)ino;
	e->nlink = (uint64_t)nlink;
	e->mtime_ns = strtoll(mns, NULL, 10);
	e->ctime_ns = strtoll(cns, NULL, 10);
	e->object_key = xstrdup(jstr(o, "object_key") ? jstr(o, "object_key") : "");
	e->url = xstrdup(jstr(o, "url") ? jstr(o, "url") : "");
	if (hex_decode(sha, e->sha256, 32) == -1)
		goto out;
	rc = 0;
 out:
	free(path);
	free(name);
	return rc;
}

int
manifest_from_json(struct manifest *m, const char *json, size_t len,
    struct errbuf *eb)
{
	cJSON *root = cJSON_ParseWithLength(json, len), *arr, *it, *a;
	const char *id, *run, *tool, *host;
	double sealed, asize;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if (root == NULL || (id = jstr(root, "batch")) == NULL ||
	    (run = jstr(root, "run_id")) == NULL ||
	    (tool = jstr(root, "tool")) == NULL ||
	    (host = jstr(root, "host")) == NULL ||
	    jnum(root, "sealed_at", 0.0, SEALED_MAX, &sealed) == -1 ||
	    !cJSON_IsArray(arr = cJSON_GetObjectItemCaseSensitive(root,
	    "entries")) || strlen(id) != 36 || strlen(run) > 36)
		goto bad;
	manifest_init(m, tool, run, host, (time_t)sealed);
	memcpy(m->id, id, 37);
	if ((a = cJSON_GetObjectItemCaseSensitive(root, "archive")) != NULL) {
		if (jstr(a, "bucket") == NULL || jstr(a, "key") == NULL ||
		    jnum(a, "size", JU64, &asize) == -1)
			goto bad;
		m->archive_bucket = xstrdup(jstr(a, "bucket"));
		m->archive_key = xstrdup(jstr(a, "key"));
		m->archive_size = (uint64_t)asize;
	}
	cJSON_ArrayForEach(it, arr)
		if (entry_from_json(m, it) == -1)
			goto bad;
	rc = 0;
	goto out;
 bad:
	errbuf_set(eb, ERR_IO, "manifest: not a batch manifest");
	manifest_release(m);
 out:
	cJSON_Delete(root);
	return rc;
}

/* ---- documents ---- */

static cJSON *
doc_json(const struct manifest *m, const struct manifest_entry *e)
{
	cJSON *d = cJSON_CreateObject(), *o, *s3;
	struct strbuf path = STRBUF_INIT;
	char ts[32], mt[32], hex[65];

	manifest_iso8601(m->sealed_at, ts);
	manifest_iso8601((time_t)e->mtime, mt);
	hex_encode(e->sha256, 32, hex);
	cJSON_AddStringToObject(d, "@timestamp", ts);
	o = cJSON_AddObjectToObject(d, "host");
	cJSON_AddStringToObject(o, "name", m->host);
	o = cJSON_AddObjectToObject(d, "s3batch");
	cJSON_AddStringToObject(o, "run_id", m->run_id);
	cJSON_AddStringToObject(o, "tool", m->tool);
	cJSON_AddStringToObject(o, "batch", m->id);
	cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "tar"),
	    "data_offset", (double)e->data_offset);
	s3 = cJSON_AddObjectToObject(cJSON_AddObjectToObject(d, "aws"), "s3");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(s3, "bucket"), "name",
	    e->bucket);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(s3, "object"), "key",
	    e->object_key);
	o = cJSON_AddObjectToObject(d, "file");
	name_escape(&path, e->path, e->path_len);
	cJSON_AddStringToObject(o, "path", path.buf);
	if (!name_is_utf8(e->path, e->path_len)) {
		char *b = b64_encode(e->path, e->path_len);

		cJSON_AddStringToObject(o, "path_b64", b);
		free(b);
	}
	cJSON_AddNumberToObject(o, "size", (double)e->size);
	cJSON_AddStringToObject(o, "mtime", mt);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "hash"), "sha256",
	    hex);
	cJSON_AddStringToObject(cJSON_AddObjectToObject(d, "url"), "full",
	    e->url);
	strbuf_release(&path);
	return d;
}

void
manifest_doc(const struct manifest *m, size_t i, struct strbuf *out)
{
	cJSON *d = doc_json(m, &m->e[i]);
	char *txt = cJSON_PrintUnformatted(d);

	strbuf_adds(out, txt);
	cJSON_free(txt);
	cJSON_Delete(d);
}

void
manifest_doc_id(const struct manifest *m, size_t i, char hex[65])
{
	const struct manifest_entry *e = &m->e[i];
	char *key;

	if (m->archive_key != NULL) {
		/* the archive key holds a uuid: unique in every bucket */
		es_doc_id(e->object_key, e->entry, e->entry_len, hex);
		return;
	}
	/* s3-sync: the same key in two buckets is two objects */
	key = xasprintf("%s/%s", e->bucket, e->object_key);
	es_doc_id(key, e->entry, e->entry_len, hex);
	free(key);
}

void
manifest_fallback(const struct manifest *m, const unsigned char *want,
    struct strbuf *out)
{
	cJSON *root = cJSON_CreateObject(), *arr;
	char ts[32], *txt;
	size_t i;

	manifest_iso8601(m->sealed_at, ts);
	cJSON_AddStringToObject(root, "batch", m->id);
	cJSON_AddStringToObject(root, "tool", m->tool);
	cJSON_AddStringToObject(root, "@timestamp", ts);
	arr = cJSON_AddArrayToObject(root, "entries");
	for (i = 0; i < m->n; i++)
		if (want == NULL || want[i])
			cJSON_AddItemToArray(arr, doc_json(m, &m->e[i]));
	txt = cJSON_PrintUnformatted(root);
	strbuf_adds(out, txt);
	cJSON_free(txt);
	cJSON_Delete(root);
}

char *
manifest_fallback_key(const struct manifest *m, const char *prefix)
{
	struct tm tm;
	time_t t = m->sealed_at;

	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	return xasprintf("%s%s%04d/%02d/%02d/%s.json", prefix,
	    *prefix != '\0' ? "/" : "", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, m->id);
}
