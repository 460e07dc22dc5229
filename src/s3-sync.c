/* s3-sync: upload each file under the bucket folders as it is. */
#include "sync.h"
#include "tool.h"

int
main(int argc, char **argv)
{
	return tool_main(TOOL_SYNC, argc, argv, sync_run);
}
