/*
 * Print a batch manifest as the tools write it (manifest_to_json), for
 * the seed corpus of fuzz_manifest: argv[1] "batch" (an archive with
 * entries) or "sync" (objects, no archive).
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "manifest.h"
#include "strbuf.h"

static void
add(struct manifest *m, const char *bucket, const char *path, size_t len,
    long size, unsigned char fill)
{
	struct manifest_entry *e;
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_size = size;
	st.st_mtim.tv_sec = 1714564800;
	st.st_mtim.tv_nsec = 123456789;
	st.st_ctim = st.st_mtim;
	st.st_dev = 2049;
	st.st_ino = 1234567;
	st.st_nlink = 1;
	e = manifest_add(m, bucket, path, len, path, len, &st);
	memset(e->sha256, fill, sizeof(e->sha256));
	e->object_key = xstrdup("logs/2024/05/01/batch.tar");
	e->url = xstrdup("https://s3.eu-west-1.amazonaws.com/logs/x");
	e->data_offset = 512 * (uint64_t)fill;
}

int
main(int argc, char **argv)
{
	struct manifest m;
	struct strbuf out = STRBUF_INIT;
	int batch = argc < 2 || strcmp(argv[1], "sync") != 0;

	manifest_init(&m, batch ? "s3-batch" : "s3-sync",
	    "0b7f4c1e-2f5c-4d55-9a4e-3c1f8d2a9b10", "ingest-01", 1714564800);
	/* a fixed batch id, so seeds do not change each time they are made */
	snprintf(m.id, sizeof(m.id), "%s",
	    "5d0c2a8e-7b1f-4e63-a4c9-0f2e6d1b3a57");
	if (batch) {
		m.archive_bucket = xstrdup("logs");
		m.archive_key = xstrdup("s3-batch/2024/05/01/ingest-01.tar");
		m.archive_size = 10240;
	}
	add(&m, "logs", "app/a.log", 9, 1000, 1);
	add(&m, "logs", "app/caf\xc3\xa9 \xff.log", 15, 0, 2);
	add(&m, "logs", "odd\nname", 8, 4096, 3);
	manifest_to_json(&m, &out);
	fwrite(out.buf, 1, out.len, stdout);
	strbuf_release(&out);
	manifest_release(&m);
	return 0;
}
