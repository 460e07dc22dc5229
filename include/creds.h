/*
 * creds: the standard AWS credential chain, asked by the S3 client before
 * each request. Sources, in the order every AWS SDK uses:
 *
 *   env           AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
 *                 (+ AWS_SESSION_TOKEN)
 *   web-identity  AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN
 *                 (+ AWS_ROLE_SESSION_NAME, default "s3-batch-<pid>"):
 *                 an unsigned AssumeRoleWithWebIdentity POST to STS at
 *                 AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else
 *                 https://sts.<region>.amazonaws.com (region from
 *                 AWS_REGION, AWS_DEFAULT_REGION, the profile, us-east-1)
 *   profile       AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials,
 *                 "[NAME]"), then AWS_CONFIG_FILE (~/.aws/config,
 *                 "[profile NAME]" or "[default]"); NAME is AWS_PROFILE or
 *                 "default"; static keys only
 *   ecs           AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (on
 *                 http://169.254.170.2) or AWS_CONTAINER_CREDENTIALS_FULL_URI
 *                 (https, or http to a loopback or the ECS/EKS addresses),
 *                 Authorization from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
 *                 (read at each fetch) or AWS_CONTAINER_AUTHORIZATION_TOKEN
 *   imds          EC2 instance metadata, IMDSv2 only (a token first; no
 *                 IMDSv1 fallback), at AWS_EC2_METADATA_SERVICE_ENDPOINT
 *                 (default http://169.254.169.254); skipped when
 *                 AWS_EC2_METADATA_DISABLED=true
 *
 * An empty variable counts as unset. A source that is configured and fails
 * (half of a key pair, a named profile that does not exist, an STS or ECS
 * error) ends the search with its error instead of quietly falling through
 * to another identity. The first source that answers is kept for the life
 * of the provider and asked again to refresh temporary credentials.
 *
 * Secrets never reach a log line or an error message; they are wiped
 * (OPENSSL_cleanse) before their memory is freed.
 *
 * Thread safety: a provider is used from one thread only (creds_get() is
 * not reentrant, and it may block for the few seconds an HTTP source
 * takes). It may be called from an http done callback: it drives the
 * shared pool only when nothing else is pending there, else a small pool
 * of its own, so no other transfer's callback runs inside it.
 */
#ifndef S3B_CREDS_H
#define S3B_CREDS_H

#include <stddef.h>
#include <time.h>

#include "errbuf.h"

struct http_pool;
struct creds_provider;

struct creds {
	char	*access_key;
	char	*secret_key;
	char	*session_token;	/* NULL for long-term keys */
	time_t	 expires;	/* 0 = never */
	/* "env", "web-identity", "profile", "ecs" or "imds" */
	char	 source[32];
};

typedef const char *(*creds_getenv_fn)(const char *name);

/* Seconds before expiry at which temporary credentials are refreshed. */
#define CREDS_REFRESH_MARGIN	300
/*
 * No source is asked again within this many seconds of the last attempt
 * (a failure, or credentials that came back already inside the margin),
 * so a broken endpoint is not asked before every request.
 */
#define CREDS_RETRY_SECS	30

/*
 * A provider reading variables through getenv_fn (getenv in the tools, a
 * table in tests; called at each lookup, the result not kept) and fetching
 * the HTTP sources through http (which stays the caller's) when it is
 * idle; when http is NULL or busy, through a pool of the provider's own,
 * made when first needed. Nothing is looked up yet. NULL on failure (eb).
 */
struct creds_provider *creds_provider_new(creds_getenv_fn getenv_fn,
	    struct http_pool *http, struct errbuf *eb);

/* Wipe the cached credentials and free; NULL is allowed. */
void	creds_provider_free(struct creds_provider *p);

/*
 * Current credentials as of now (seconds since the epoch; no clock is read
 * inside). Sources are asked when none are cached or the cached ones
 * expire within CREDS_REFRESH_MARGIN; when a refresh fails while the
 * cached credentials are still valid, these are kept (one warning) and the
 * source is asked again after CREDS_RETRY_SECS. A failed search is
 * remembered for CREDS_RETRY_SECS too, and an IMDS that did not answer at
 * all is skipped for the life of the provider.
 * On success fills *out with copies the caller releases with
 * creds_release(). Returns 0, or -1 with eb (ERR_AUTH; the message names
 * the sources tried and why the last one failed, never a secret).
 */
int	creds_get(struct creds_provider *p, time_t now, struct creds *out,
	    struct errbuf *eb);

/* Wipe and free the strings of c and zero it; NULL-safe, idempotent. */
void	creds_release(struct creds *c);

/*
 * The region of the selected profile (AWS_PROFILE or "default") from the
 * config file (AWS_CONFIG_FILE or ~/.aws/config), for the config module.
 * Sets *region to a new string the caller frees, or to NULL when there is
 * none (no file, no such profile, no region key). Returns 0, or -1 with eb
 * (ERR_CONFIG: the file is unreadable or malformed).
 */
int	creds_profile_region(creds_getenv_fn getenv_fn, char **region,
	    struct errbuf *eb);

/*
 * Parsers, exposed for unit tests and fuzzing.
 *
 * creds_parse_ini: look up keys in one section of an AWS shared file (the
 * INI dialect of ~/.aws/credentials and ~/.aws/config). section is the
 * exact header text ("default", "profile ci"); runs of blanks inside a
 * header count as one space. Key names match case-insensitively; values
 * are trimmed; "#" or ";" starts a comment at the start of a line, or
 * after a blank inside a value. An indented line after a setting continues
 * it (nested "s3 =" blocks) and is ignored. A section may appear several
 * times; the last value of a key wins. For each of the nkeys names in
 * keys, values[i] is set to a new string (the caller wipes and frees it)
 * or NULL. Returns 1 when the section exists, 0 when it does not (values
 * all NULL), -1 with eb (ERR_CONFIG, "line N: ...", never the line's text)
 * when the text is malformed (values all NULL then).
 */
int	creds_parse_ini(const char *text, size_t len, const char *section,
	    const char *const *keys, char **values, size_t nkeys,
	    struct errbuf *eb);

/*
 * creds_parse_json: the answer of the ECS endpoint or of IMDS
 * (AccessKeyId, SecretAccessKey, Token, Expiration as ISO-8601; IMDS's
 * Code must be "Success" when present). An absent Expiration means never;
 * an empty Token means none. Fills *out (source left empty) on success;
 * -1 with eb (ERR_AUTH) otherwise.
 */
int	creds_parse_json(const char *text, size_t len, struct creds *out,
	    struct errbuf *eb);

/*
 * creds_parse_sts_xml: an AssumeRoleWithWebIdentityResponse from STS
 * (parsed with expat; a DOCTYPE is refused). Fills *out (source left
 * empty) and returns 0; an ErrorResponse gives -1 with eb (ERR_AUTH,
 * "<Code>: <Message>"), as does anything else.
 */
int	creds_parse_sts_xml(const char *text, size_t len, struct creds *out,
	    struct errbuf *eb);

/*
 * creds_parse_time: an ISO-8601 UTC time as AWS writes it
 * ("2024-05-01T12:00:00Z", fractions of a second and "+hh:mm" offsets
 * allowed) into seconds since the epoch. 0, or -1 when malformed.
 */
int	creds_parse_time(const char *s, time_t *out);

#endif
