#include <errno.h>
#include <stdlib.h>

#include "check.h"
#include "errbuf.h"
#include "strbuf.h"

static void
test_strbuf(void)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned char bytes[] = { 0x00, 0xab, 0xff };
	char *s;
	size_t len;

	strbuf_addf(&sb, "%s-%d", "abc", 42);
	CHECK_STREQ(sb.buf, "abc-42");
	strbuf_addhex(&sb, bytes, sizeof(bytes));
	CHECK_STREQ(sb.buf, "abc-4200abff");
	strbuf_reset(&sb);
	CHECK(sb.len == 0);
	for (int i = 0; i < 1000; i++)
		strbuf_addch(&sb, 'x');
	CHECK(sb.len == 1000 && strlen(sb.buf) == 1000);
	s = strbuf_detach(&sb, &len);
	CHECK(len == 1000);
	CHECK(sb.len == 0);
	free(s);
	strbuf_release(&sb);
}

static void
test_errbuf(void)
{
	struct errbuf eb;

	errbuf_clear(&eb);
	CHECK(errbuf_exit_status(&eb) == 0);
	errbuf_set(&eb, ERR_CONFIG, "'%s' is not a number", "X");
	errbuf_prefix(&eb, "MAX_BATCH_SIZE_MB");
	CHECK_STREQ(eb.msg, "MAX_BATCH_SIZE_MB: 'X' is not a number");
	CHECK(errbuf_exit_status(&eb) == 78);
	errno = 28;	/* ENOSPC */
	errbuf_setsys(&eb, ERR_IO, "write '%s'", "f");
	CHECK(eb.kind == ERR_NOSPACE);
	CHECK(errbuf_exit_status(&eb) == 74);
}

int
main(void)
{
	test_strbuf();
	test_errbuf();
	CHECK_DONE();
}
