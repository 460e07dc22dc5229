/*
 * es: the manifest's ElasticSearch/OpenSearch client over the http pool.
 * Documents go in with _bulk (typeless NDJSON, so Elasticsearch 7/8/9 and
 * OpenSearch 1-3 all take them), each one's answer is checked, and what
 * the server could not take for now is sent again with backoff and jitter
 * within a bounded number of attempts and a total time budget.
 *
 * Auth: an API key (Authorization: ApiKey) when ELASTICSEARCH_LOGS_API_KEY
 * is set, else basic auth when a user name and password are; https checks
 * the server against ELASTICSEARCH_LOGS_CA_BUNDLE or the system store.
 * Secrets never reach a log line or an error message.
 */
#ifndef S3B_ES_H
#define S3B_ES_H

#include <stddef.h>

#include "config.h"
#include "errbuf.h"

struct es_client;
struct http_pool;

/* Limits; a bulk request's body stays within ES_BULK_MAX_BYTES. */
#define ES_BULK_MAX_BYTES	(4u * 1024 * 1024)
#define ES_MAX_ATTEMPTS		5
#define ES_RETRY_BUDGET_MS	60000L	/* no retry starts later in a call */
#define ES_CONNECT_TIMEOUT_MS	5000L
#define ES_REQUEST_TIMEOUT_MS	20000L	/* well under the budget: a timeout
					   is retried before falling back */

struct es_doc {
	const char	*id;		/* the document _id (see es_doc_id) */
	const char	*json;		/* one JSON object, no newline in it */
	size_t		 json_len;
};

enum es_item {
	ES_ITEM_OK = 0,		/* indexed (created or overwritten) */
	ES_ITEM_REJECTED = 1,	/* refused for good (mapping conflict, write
				   block, ...): for the fallback bucket */
	ES_ITEM_UNSENT = 2,	/* not delivered: server down, retries spent */
};

/*
 * A client for the configuration's ElasticSearch (es_scheme, es_host,
 * es_port, es_index, credentials, es_ca_bundle), sending through pool,
 * which must outlive it. cfg is read now and not kept. NULL with eb
 * (ERR_CONFIG) when the index name is not one ElasticSearch accepts.
 * Free with es_client_free(), which wipes the credentials (NULL-safe).
 */
struct es_client *es_client_new(const struct config *cfg,
	    struct http_pool *pool, struct errbuf *eb);
void	es_client_free(struct es_client *es);

/*
 * Create or overwrite the index template named after the index, for the
 * patterns "<index>" and "<index>-*" (rollover indices), mapping
 * @timestamp as a date and the manifest's identifiers as keywords. A
 * composable template (_index_template) with priority 200; on servers
 * older than Elasticsearch 7.8, which lack it, a legacy _template. Once
 * it succeeded the client remembers it and later calls return 0 at once.
 * Transient failures are retried like es_bulk's. Returns 0, or -1 with eb
 * (ERR_REMOTE, or ERR_AUTH for 401/403); the caller may still index:
 * dynamic mapping also takes @timestamp as a date.
 */
int	es_ensure_template(struct es_client *es, struct errbuf *eb);

/*
 * Index the n documents into the configured index with _bulk, in requests
 * of at most ES_BULK_MAX_BYTES (a document larger than that goes alone).
 * result[i] (n entries, caller's) receives docs[i]'s outcome:
 *   - items answered 2xx are OK;
 *   - items answered 429 or 5xx, and whole requests that failed in
 *     transport (also a timeout after the request was sent: re-sending
 *     overwrites by _id, so it is safe), answered 408, 429 or 5xx, or with
 *     an unreadable body, are sent again, at most ES_MAX_ATTEMPTS times
 *     within ES_RETRY_BUDGET_MS; what is still not indexed is UNSENT;
 *   - other item statuses are REJECTED, with one log_warn each (id,
 *     status, error type and reason);
 *   - a whole request answered another 4xx (auth, bad request) leaves its
 *     documents UNSENT at once; but 413 halves the request size for the
 *     rest of the call and sends again (a lone document refused with 413
 *     is REJECTED).
 * After a request that got no answer at all, the rest of that round waits
 * for the next, so a hung server costs one request timeout per round, and
 * no round starts once ES_RETRY_BUDGET_MS have passed: about a minute.
 * Blocks; while it waits for a retry it drives the pool, so other
 * transfers on it go on (and their callbacks run from here).
 * Returns 0 when every document has its outcome, whatever it is; when
 * some are UNSENT, eb also holds their number and the first error seen
 * (ERR_REMOTE, or ERR_AUTH for 401/403), for the caller's log; otherwise
 * eb is untouched. -1 with eb (ERR_INTERNAL) only when a document is not
 * one line of JSON with an id (nothing sent) or the pool failed; result
 * is then not to be used.
 */
int	es_bulk(struct es_client *es, const struct es_doc *docs, size_t n,
	    enum es_item *result, struct errbuf *eb);

/*
 * The document _id the SPEC requires: lower-case hex SHA-256 of the
 * archive key's bytes, one NUL byte, then the name_len bytes of the entry
 * name (raw, not necessarily UTF-8). hex receives 64 digits and a NUL.
 */
void	es_doc_id(const char *archive_key, const char *entry_name,
	    size_t name_len, char hex[65]);

/*
 * Sort a 2xx _bulk answer (len bytes at body) for the n documents docs
 * sent to index, as es_bulk() does, without any I/O: result[i] (n
 * entries, caller's) becomes OK, REJECTED (one log_warn each), or UNSENT
 * for an item to send again (429, 5xx, no readable status). Returns 0, or
 * -1 with eb (ERR_REMOTE) when the answer has no "items" array of n
 * entries. Exposed for fuzzing.
 */
int	es_parse_bulk_response(const char *index, const struct es_doc *docs,
	    size_t n, const char *body, size_t len, enum es_item *result,
	    struct errbuf *eb);

#endif
