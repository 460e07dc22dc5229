#include <string.h>

#include "names.h"

/*
 * Length of the valid UTF-8 sequence that starts at s[0] (at most len bytes
 * available), or 0 when the bytes there are not one.
 */
static size_t
utf8_seq_len(const unsigned char *s, size_t len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else
		return 0;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

int
name_is_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if ((n = utf8_seq_len(p + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

static void
escape_byte(struct strbuf *out, unsigned char c)
{
	switch (c) {
	case '\\':
		strbuf_adds(out, "\\\\");
		break;
	case '\n':
		strbuf_adds(out, "\\n");
		break;
	case '\t':
		strbuf_adds(out, "\\t");
		break;
	case '\r':
		strbuf_adds(out, "\\r");
		break;
	default:
		strbuf_addf(out, "\\x%02x", c);
		break;
	}
}

void
name_escape(struct strbuf *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	strbuf_grow(out, len);
	while (i < len) {
		n = utf8_seq_len(p + i, len - i);
		if (n == 1 && p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			strbuf_addch(out, p[i]);
		else if (n > 1 && !(p[i] == 0xc2 && p[i + 1] < 0xa0))
			strbuf_add(out, p + i, n);	/* not a C1 control */
		else {
			escape_byte(out, p[i]);
			n = 1;
		}
		i += n;
	}
}

/* Four groups of digits separated by single dots: "192.168.5.4". */
static int
looks_like_ipv4(const char *s)
{
	int groups = 1, digits = 0;

	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (digits == 0)
				return 0;
			groups++;
			digits = 0;
		} else if (*s >= '0' && *s <= '9')
			digits++;
		else
			return 0;
	}
	return groups == 4 && digits > 0;
}

static int
is_lower_or_digit(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int
bucket_name_valid(const char *s)
{
	size_t len = strlen(s), i;

	if (len < 3 || len > 63)
		return 0;
	if (!is_lower_or_digit(s[0]) || !is_lower_or_digit(s[len - 1]))
		return 0;
	for (i = 0; i < len; i++) {
		if (is_lower_or_digit(s[i]) || s[i] == '-')
			continue;
		if (s[i] != '.' || s[i + 1] == '.')
			return 0;
	}
	return !looks_like_ipv4(s);
}
