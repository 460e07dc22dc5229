/*
 * names: what a file or folder name must be to become part of an S3 object
 * key or a bucket name, and how to print any name safely in a log line.
 * Pure functions: no I/O, no allocation except into the caller's strbuf.
 */
#ifndef S3B_NAMES_H
#define S3B_NAMES_H

#include <stddef.h>

#include "strbuf.h"

/* S3's limit on the length of an object key, in bytes of its UTF-8. */
#define S3_KEY_MAX	1024

/*
 * Append the len bytes of s to out in a form safe for a one-line log
 * message: valid UTF-8 sequences of printable characters are kept as they
 * are; a backslash becomes "\\", newline, tab and carriage return become
 * "\n", "\t", "\r", and every other control byte and every byte that is
 * not part of a valid UTF-8 sequence becomes "\xNN" (lower-case hex).
 * The result is always valid UTF-8 without control characters.
 */
void	name_escape(struct strbuf *out, const char *s, size_t len);

/*
 * 1 when the len bytes of s are valid UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF), else 0. An empty string is
 * valid.
 */
int	name_is_utf8(const char *s, size_t len);

/*
 * 1 when the NUL-terminated s is a valid S3 bucket name, else 0: 3 to 63
 * characters of lower-case letters, digits, dots and hyphens; it begins
 * and ends with a letter or digit; no two adjacent dots; not formatted as
 * an IPv4 address (four dot-separated groups of digits).
 * AWS's reserved prefixes and suffixes (xn--, -s3alias, ...) are not
 * checked: buckets made before those rules exist, and other S3 servers do
 * not reserve them; S3 itself refuses a bucket that does not exist.
 */
int	bucket_name_valid(const char *s);

#endif
