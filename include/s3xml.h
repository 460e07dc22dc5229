/*
 * s3xml: the few facts the tools need from S3's XML answers (errors,
 * CreateMultipartUpload, CompleteMultipartUpload), read with expat.
 */
#ifndef S3B_S3XML_H
#define S3B_S3XML_H

#include <stddef.h>

struct s3xml {
	char	root[64];	/* name of the document element, "" if none */
	char	code[128];	/* <Code> */
	char	message[256];	/* <Message> */
	char	region[64];	/* <Region> (AuthorizationHeaderMalformed) */
	char	upload_id[512];	/* <UploadId> */
	char	etag[128];	/* <ETag>, quotes kept */
	char	key[1100];	/* <Key> */
};

/*
 * Parse an answer body. Only children of the document element count, the
 * first of each name; long texts are cut to the field. Returns 0 when the
 * body is well-formed XML, -1 otherwise (out then holds what was read).
 */
int	s3xml_parse(const char *body, size_t len, struct s3xml *out);

#endif
