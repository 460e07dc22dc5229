#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "check.h"
#include "manifest.h"
#include "strbuf.h"

static void
fill(struct manifest *m)
{
	struct stat st;
	struct manifest_entry *e;

	memset(&st, 0, sizeof(st));
	st.st_size = 1234;
	st.st_dev = 2049;
	st.st_ino = 987654321;
	st.st_nlink = 2;
	st.st_mtim.tv_sec = 1795612151;
	st.st_mtim.tv_nsec = 123456789;
	st.st_ctim.tv_sec = 1795612152;
	st.st_ctim.tv_nsec = 999999999;
	e = manifest_add(m, "bkt", "logs/a b.txt", 12, "a b.txt", 7, &st);
	e->object_key = xstrdup("logs/x.tar");
	e->url = xstrdup("http://127.0.0.1:7480/bkt/logs/x.tar");
	e->data_offset = 512;
	memset(e->sha256, 0xab, 32);
	e = manifest_add(m, "bkt", "logs/bad\xff\n", 10, "bad\xff\n", 5, &st);
	e->object_key = xstrdup("logs/x.tar");
	e->url = xstrdup("u");
	m->archive_bucket = xstrdup("bkt");
	m->archive_key = xstrdup("logs/x.tar");
	m->archive_size = 4096;
}

static void
test_roundtrip(void)
{
	struct manifest m, back;
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;
	struct errbuf eb;

	manifest_init(&m, "s3-batch", "run-1", "host-1", 1795612151);
	fill(&m);
	manifest_to_json(&m, &a);
	CHECK(manifest_from_json(&back, a.buf, a.len, &eb) == 0);
	manifest_to_json(&back, &b);
	CHECK_STREQ(a.buf, b.buf);
	CHECK(back.n == 2);
	CHECK(back.e[1].path_len == 10 && memcmp(back.e[1].path,
	    "logs/bad\xff\n", 10) == 0);
	CHECK(back.e[0].mtime_ns == 1795612151123456789LL);
	CHECK(back.e[0].ctime_ns == 1795612152999999999LL);
	CHECK(back.e[0].ino == 987654321 && back.e[0].nlink == 2);
	CHECK(strcmp(back.id, m.id) == 0 && strlen(m.id) == 36);
	manifest_release(&back);
	CHECK(manifest_from_json(&back, "{\"batch\":1}", 11, &eb) == -1);
	CHECK(manifest_from_json(&back, a.buf, a.len / 2, &eb) == -1);
	manifest_release(&back);
	manifest_release(&m);
	strbuf_release(&a);
	strbuf_release(&b);
}

static void
test_docs(void)
{
	struct manifest m;
	struct strbuf d = STRBUF_INIT, f = STRBUF_INIT;
	unsigned char want[2] = { 0, 1 };
	cJSON *j, *arr;
	char id1[65], id2[65], *key;

	manifest_init(&m, "s3-batch", "run-1", "host-1", 1795612151);
	fill(&m);
	manifest_doc(&m, 0, &d);
	j = cJSON_Parse(d.buf);
	CHECK(j != NULL);
	CHECK_STREQ(cJSON_GetObjectItem(j, "@timestamp")->valuestring,
	    "2026-11-25T13:09:11Z");
	CHECK_STREQ(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "file"),
	    "path")->valuestring, "logs/a b.txt");
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "file"),
	    "path_b64") == NULL);
	CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j,
	    "s3batch"), "tar"), "data_offset")->valuedouble == 512);
	cJSON_Delete(j);
	strbuf_reset(&d);
	manifest_doc(&m, 1, &d);
	j = cJSON_Parse(d.buf);
	CHECK_STREQ(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "file"),
	    "path")->valuestring, "logs/bad\\xff\\n");
	CHECK_STREQ(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "file"),
	    "path_b64")->valuestring, "bG9ncy9iYWT/Cg==");
	cJSON_Delete(j);
	manifest_doc_id(&m, 0, id1);
	manifest_doc_id(&m, 1, id2);
	CHECK(strlen(id1) == 64 && strcmp(id1, id2) != 0);
	manifest_fallback(&m, want, &f);
	j = cJSON_Parse(f.buf);
	arr = cJSON_GetObjectItem(j, "entries");
	CHECK(cJSON_GetArraySize(arr) == 1);
	cJSON_Delete(j);
	key = manifest_fallback_key(&m, "manifests");
	CHECK(strncmp(key, "manifests/2026/11/25/", 21) == 0);
	CHECK(strcmp(key + 21 + 36, ".json") == 0);
	free(key);
	manifest_release(&m);
	strbuf_release(&d);
	strbuf_release(&f);
}

int
main(void)
{
	test_roundtrip();
	test_docs();
	CHECK_DONE();
}
