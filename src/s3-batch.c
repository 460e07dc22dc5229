/* s3-batch: pack the files of each folder into tar archives and upload them. */
#include "pack.h"
#include "tool.h"

int
main(int argc, char **argv)
{
	return tool_main(TOOL_BATCH, argc, argv, pack_run);
}
