#include <string.h>

#include <expat.h>

#include "s3xml.h"

struct s3xml_state {
	struct s3xml	*out;
	int		 depth;
	char		*field;		/* destination of the text in progress */
	size_t		 fieldsz;
	size_t		 fieldlen;
};

static const char *
local_name(const char *name)
{
	const char *sep = strrchr(name, ' ');	/* namespace separator */

	return sep != NULL ? sep + 1 : name;
}

static void
copy_field(char *dst, size_t dstsz, const char *src)
{
	size_t n = strlen(src);

	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void XMLCALL
on_start(void *arg, const XML_Char *name, const XML_Char **attrs)
{
	struct s3xml_state *st = arg;
	struct s3xml *o = st->out;
	const char *n = local_name(name);
	static const struct {
		const char *name;
		size_t off, size;
	} fields[] = {
		{ "Code", offsetof(struct s3xml, code), sizeof(o->code) },
		{ "Message", offsetof(struct s3xml, message), sizeof(o->message) },
		{ "Region", offsetof(struct s3xml, region), sizeof(o->region) },
		{ "UploadId", offsetof(struct s3xml, upload_id), sizeof(o->upload_id) },
		{ "ETag", offsetof(struct s3xml, etag), sizeof(o->etag) },
		{ "Key", offsetof(struct s3xml, key), sizeof(o->key) },
	};
	size_t i;

	(void)attrs;
	st->depth++;
	st->field = NULL;
	if (st->depth == 1) {
		copy_field(o->root, sizeof(o->root), n);
		return;
	}
	if (st->depth != 2)
		return;
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char *dst = (char *)o + fields[i].off;

		if (strcmp(n, fields[i].name) == 0 && dst[0] == '\0') {
			st->field = dst;
			st->fieldsz = fields[i].size;
			st->fieldlen = 0;
		}
	}
}

static void XMLCALL
on_end(void *arg, const XML_Char *name)
{
	struct s3xml_state *st = arg;

	(void)name;
	st->depth--;
	st->field = NULL;
}

static void XMLCALL
on_text(void *arg, const XML_Char *s, int len)
{
	struct s3xml_state *st = arg;
	size_t room, n;

	if (st->field == NULL || len <= 0)
		return;
	room = st->fieldsz - 1 - st->fieldlen;
	n = (size_t)len < room ? (size_t)len : room;
	memcpy(st->field + st->fieldlen, s, n);
	st->fieldlen += n;
	st->field[st->fieldlen] = '\0';
}

int
s3xml_parse(const char *body, size_t len, struct s3xml *out)
{
	struct s3xml_state st = { out, 0, NULL, 0, 0 };
	XML_Parser p;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (len > (size_t)0x7fffffff)
		return -1;
	if ((p = XML_ParserCreateNS(NULL, ' ')) == NULL)
		return -1;
	XML_SetUserData(p, &st);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_text);
	if (XML_Parse(p, body, (int)len, 1) == XML_STATUS_OK)
		rc = 0;
	XML_ParserFree(p);
	return rc;
}
