/*
 * sigv4: AWS Signature Version 4 for requests signed in the Authorization
 * header, following S3's rules (the path is percent-encoded once and never
 * normalised). No I/O and no clock inside: the caller passes the time, so
 * every stage is a pure function of its arguments and is compared byte for
 * byte with the AWS test vectors (tests/vectors/sigv4).
 *
 * The stages, after aws-c-auth: canonical request (1), string to sign (2),
 * signing key and signature (3); sigv4_authorization() runs them all.
 * Cryptography is libcrypto's. As with memory (see strbuf.h), a failure of
 * libcrypto's SHA-256 or HMAC aborts: it cannot happen short of a broken
 * installation, and a wrong signature would be worse.
 */
#ifndef S3B_SIGV4_H
#define S3B_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "errbuf.h"
#include "strbuf.h"

struct sigv4_header {
	const char	*name;
	const char	*value;
};

struct sigv4_request {
	const char	*method;	/* "GET", "PUT", ... */
	/* Raw, unencoded path bytes starting with '/': "/bucket/a b/é.txt". */
	const char	*path;
	/*
	 * The query string as it goes on the URL, without the '?' and
	 * already encoded ("uploadId=abc&partNumber=3"); "" or NULL for none.
	 * A '+' is a plus sign, not a space.
	 */
	const char	*query;
	/* Every header to sign, Host included; any order, names may repeat. */
	const struct sigv4_header *headers;
	size_t		 nheaders;
	/* Hex SHA-256 of the body, "UNSIGNED-PAYLOAD" or a STREAMING-* form. */
	const char	*payload_hash;
};

struct sigv4_creds {
	const char	*access_key;
	const char	*secret_key;
	const char	*session_token;	/* NULL for long-term keys */
};

/* Length of an amz_date, "YYYYMMDDTHHMMSSZ", without its NUL. */
#define SIGV4_DATE_LEN	16

/*
 * Format when (seconds since the epoch, UTC) as "YYYYMMDDTHHMMSSZ" into
 * amz_date. A time outside the years 0000-9999 gives "", which
 * sigv4_authorization() rejects. Reads no clock: the caller passes the time.
 */
void	sigv4_format_date(time_t when, char amz_date[17]);

/*
 * Append to out the len bytes of s percent-encoded as S3 wants: every byte
 * but A-Z a-z 0-9 - _ . ~ becomes %XX (upper-case hex), and '/' is kept as
 * it is when keep_slash is non-zero (object keys in paths). s may hold NUL
 * bytes. Never fails.
 */
void	sigv4_uri_encode(struct strbuf *out, const char *s, size_t len,
	    int keep_slash);

/*
 * Stage 1: append the canonical request for req to out, and its
 * signed-header list ("host;x-amz-date") to signed_headers.
 *
 * The path is encoded once with '/' kept and not normalised ("//a/./b"
 * stays as it is). The query's parameters are decoded and encoded again
 * canonically (so "a b" and "a%20b" give "a%20b", and "a+b" gives "a%2Bb"),
 * a parameter without '=' gets an empty value, empty parameters ("a&&b")
 * are dropped, and the parameters are sorted by encoded name, then value.
 * Header names are lower-cased; values lose their leading and trailing
 * white space and each inner run of white space (SP, HT, CR, LF: an
 * obs-folded multi-line value) becomes one space; values of a repeated
 * name are joined with ',' in the order given; headers are sorted by name.
 *
 * Returns 0, or -1 with eb set (ERR_INTERNAL) and out and signed_headers
 * untouched when req is malformed: a NULL or non-token method, a path that
 * does not start with '/', a query with a leading '?' or a bad %-escape, a
 * header name that is not an HTTP token, a NULL value, a missing or blank
 * payload_hash.
 */
int	sigv4_canonical_request(const struct sigv4_request *req,
	    struct strbuf *out, struct strbuf *signed_headers,
	    struct errbuf *eb);

/*
 * Stage 2: append to out the string to sign,
 * "AWS4-HMAC-SHA256\n<amz_date>\n<date8>/<region>/<service>/aws4_request\n"
 * followed by the hex SHA-256 of canonical_request. date8 is the first 8
 * characters of amz_date. Never fails; checking the arguments is
 * sigv4_authorization()'s job.
 */
void	sigv4_string_to_sign(const char *amz_date, const char *region,
	    const char *service, const char *canonical_request,
	    struct strbuf *out);

/*
 * Stage 3a: derive the signing key, HMAC chained over "AWS4" secret_key,
 * date8, region, service and "aws4_request", into key. Only the first 8
 * characters of date8 are used, so an amz_date may be passed. The
 * intermediate keys are wiped; the caller wipes key (OPENSSL_cleanse) when
 * done with it. The key is valid for one day, region and service, so a
 * caller may keep it to sign many requests (or aws-chunked chunks).
 */
void	sigv4_signing_key(const char *secret_key, const char *date8,
	    const char *region, const char *service, unsigned char key[32]);

/*
 * Stage 3b: the lower-case hex HMAC-SHA256 of string_to_sign under key,
 * NUL-terminated in hex.
 */
void	sigv4_signature(const unsigned char key[32],
	    const char *string_to_sign, char hex[65]);

/*
 * All stages: set *authorization to a new string the caller frees,
 * "AWS4-HMAC-SHA256 Credential=<access_key>/<scope>, SignedHeaders=<list>,
 * Signature=<hex>", the value of the Authorization header.
 *
 * The signer adds no header: req->headers must already hold, once each,
 *   Host;
 *   X-Amz-Date, equal to amz_date (use sigv4_format_date());
 *   X-Amz-Security-Token, equal to creds->session_token, when that is
 *     not NULL;
 *   X-Amz-Content-SHA256, equal to req->payload_hash, when service is
 *     "s3".
 * The same headers (and no others that the server would see as signed)
 * must then go out with the request.
 *
 * Returns 0, or -1 with eb set and *authorization untouched: ERR_INTERNAL
 * for a malformed request or amz_date or a missing or mismatched header
 * above, ERR_AUTH for unusable credentials (empty, or an access key with
 * '/', ',' or white space), ERR_CONFIG for an empty region or service or
 * one with '/' or white space. No secret appears in a message.
 */
int	sigv4_authorization(const struct sigv4_request *req,
	    const struct sigv4_creds *creds, const char *amz_date,
	    const char *region, const char *service, char **authorization,
	    struct errbuf *eb);

/* The lower-case hex SHA-256 of len bytes at data, NUL-terminated in hex. */
void	sigv4_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
