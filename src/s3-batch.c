/* s3-batch: pack the files of each folder into tar archives and upload them. */
#include "errbuf.h"
#include "log.h"
#include "run.h"
#include "tool.h"

static int
batch_not_built(struct run *r, struct errbuf *eb)
{
	(void)r;
	errbuf_set(eb, ERR_INTERNAL, "s3-batch: packing is not built yet; "
	    "configuration checked");
	return -1;
}

int
main(int argc, char **argv)
{
	return tool_main(TOOL_BATCH, argc, argv, batch_not_built);
}
