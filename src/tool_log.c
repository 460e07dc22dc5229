/*
 * tool_log: where the library's events go.
 *
 * stderr: on a terminal notices (the summary) and above, with a progress
 * line; under cron only warnings and errors, so that cron mails only when
 * something is wrong. -v and -q move that threshold.
 *
 * rsyslog, when RSYSLOG_HOST is set: RFC 5424 lines, facility user (what
 * the original tool's Python SysLogHandler sent), over UDP or over TCP
 * with octet-counting framing (RFC 6587). It gets notices and above (-v:
 * info, -vv: debug) whatever stderr shows, so the summary of a cron run
 * lands there. Sockets are non-blocking and every wait is short: a syslog
 * that is slow or down costs a run at most a few seconds, once, and then
 * one warning on stderr; it never fails a run.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "run.h"
#include "strbuf.h"
#include "tool.h"

#define SYSLOG_FACILITY		1	/* user */
#define SYSLOG_CONNECT_MS	1000
#define SYSLOG_SEND_MS		500
#define SYSLOG_MAX_MSG		4096	/* bytes of one RFC 5424 message */
#define SYSLOG_RECONNECTS	3	/* per run, then stderr only */
#define PROGRESS_EVERY_MS	250
#define MAX_SECRETS		8

struct syslog_sink {
	int			 on;	/* configured and not given up */
	int			 tcp;
	int			 fd;
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	char			 dest[300];	/* "tcp://host:port" */
	char			 hostname[256];
	enum log_level		 max;
	int			 reconnects;
	int			 err;		/* errno of the last failure */
	int			 warned;
};

static struct {
	const char		*prog;
	enum log_level		 stderr_max;
	int			 verbosity;
	struct syslog_sink	 sl;
	/* progress */
	int			 progress_on;
	int			 archives;	/* s3-batch: objects are archives */
	const struct run_stats	*stats;
	long long		 t0_ms;
	long long		 drawn_ms;
	int			 drawn;		/* a progress line is showing */
	char			*secrets[MAX_SECRETS];
	size_t			 nsecrets;
} lg = {
	.prog = "s3-batch",
	.stderr_max = LOG_LVL_WARN,
	.sl = { .fd = -1 },
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Tell log.c the most verbose level some sink wants. */
static void
update_max_level(void)
{
	enum log_level max = lg.stderr_max;

	if (lg.sl.on && lg.sl.max > max)
		max = lg.sl.max;
	/* progress is redrawn on the library's per-file events */
	if (lg.progress_on && max < LOG_LVL_INFO)
		max = LOG_LVL_INFO;
	log_set_max_level(max);
}

/* --- stderr ------------------------------------------------------------ */

static void
progress_clear(void)
{
	if (!lg.drawn)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	lg.drawn = 0;
}

static void
stderr_line(enum log_level level, const char *line)
{
	if (level > lg.stderr_max)
		return;
	static const char *const tags[] = {
		"error: ", "warning: ", "", "", "debug: ",
	};

	progress_clear();
	fprintf(stderr, "%s: %s%s\n", lg.prog, tags[level], line);
}

/* --- secrets ------------------------------------------------------------ */

void
tool_log_secret(const char *s)
{
	if (s == NULL || strlen(s) < 4 || lg.nsecrets == MAX_SECRETS)
		return;
	lg.secrets[lg.nsecrets++] = xstrdup(s);
}

/* line, or a copy in out with every secret replaced. */
static const char *
redact(const char *line, struct strbuf *out)
{
	const char *cur = line, *p;
	struct strbuf tmp;
	size_t i, slen;

	for (i = 0; i < lg.nsecrets; i++) {
		if (strstr(cur, lg.secrets[i]) == NULL)
			continue;
		slen = strlen(lg.secrets[i]);
		strbuf_init(&tmp, strlen(cur));
		while ((p = strstr(cur, lg.secrets[i])) != NULL) {
			strbuf_add(&tmp, cur, (size_t)(p - cur));
			strbuf_adds(&tmp, "[redacted]");
			cur = p + slen;
		}
		strbuf_adds(&tmp, cur);
		strbuf_release(out);
		*out = tmp;
		cur = out->buf;
	}
	return cur;
}

/* --- rsyslog ------------------------------------------------------------ */

static void
syslog_drop(struct syslog_sink *s)
{
	if (s->fd != -1)
		close(s->fd);
	s->fd = -1;
}

static int
wait_fd(int fd, short events, long long deadline_ms)
{
	struct pollfd pfd = { fd, events, 0 };
	long long left;
	int n;

	for (;;) {
		if ((left = deadline_ms - mono_ms()) < 0)
			left = 0;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

static int
syslog_connect(struct syslog_sink *s)
{
	int type = s->tcp ? SOCK_STREAM : SOCK_DGRAM;
	socklen_t elen = sizeof(s->err);
	int fd;

	fd = socket(s->addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	if (connect(fd, (struct sockaddr *)&s->addr, s->addrlen) == 0)
		goto done;
	if (errno != EINPROGRESS ||
	    wait_fd(fd, POLLOUT, mono_ms() + SYSLOG_CONNECT_MS) == -1)
		goto fail;
	s->err = 0;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &s->err, &elen) == -1 ||
	    s->err != 0) {
		if (s->err != 0)
			errno = s->err;
		goto fail;
	}
 done:
	s->fd = fd;
	return 0;
 fail:
	s->err = errno;
	if (fd != -1)
		close(fd);
	return -1;
}

/* 0 when a TCP peer has not closed the connection (rsyslog never talks). */
static int
tcp_alive(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	char buf[256];

	if (poll(&pfd, 1, 0) <= 0)
		return 1;
	if (pfd.revents & (POLLERR | POLLHUP))
		return 0;
	return recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
}

static int
send_all(struct syslog_sink *s, const char *p, size_t len)
{
	long long deadline = mono_ms() + SYSLOG_SEND_MS;
	ssize_t n;

	while (len > 0) {
		n = send(s->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			goto fail;
		if (wait_fd(s->fd, POLLOUT, deadline) == -1)
			goto fail;
	}
	return 0;
 fail:
	s->err = errno;
	return -1;
}

static int
syslog_try(struct syslog_sink *s, const char *frame, size_t len)
{
	if (s->fd != -1 && !tcp_alive(s->fd))
		syslog_drop(s);
	if (s->fd == -1 && syslog_connect(s) == -1)
		return -1;
	if (frame == NULL || send_all(s, frame, len) == 0)
		return 0;
	/* a frame cut short breaks the stream: start a new one */
	syslog_drop(s);
	return -1;
}

static void
syslog_give_up(struct syslog_sink *s)
{
	char msg[512];

	syslog_drop(s);
	s->on = 0;
	update_max_level();
	snprintf(msg, sizeof(msg), "rsyslog %s: %s; logging to stderr only",
	    s->dest, strerror(s->err));
	stderr_line(LOG_LVL_WARN, msg);
}

/* TCP: one immediate reconnect per failure, a few per run, then give up. */
static void
syslog_send_tcp(struct syslog_sink *s, const char *frame, size_t len)
{
	if (syslog_try(s, frame, len) == 0)
		return;
	if (s->reconnects < SYSLOG_RECONNECTS) {
		s->reconnects++;
		if (syslog_try(s, frame, len) == 0)
			return;
	}
	syslog_give_up(s);
}

/* UDP: fire and forget; say once that lines are refused. */
static void
syslog_send_udp(struct syslog_sink *s, const char *msg, size_t len)
{
	char line[512];

	if (send(s->fd, msg, len, MSG_NOSIGNAL | MSG_DONTWAIT) != -1 ||
	    errno == EAGAIN || errno == EWOULDBLOCK || s->warned)
		return;
	s->warned = 1;
	snprintf(line, sizeof(line), "rsyslog %s: %s; its lines may be lost",
	    s->dest, strerror(errno));
	stderr_line(LOG_LVL_WARN, line);
}

static void
rfc5424_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%06ldZ", ts.tv_nsec / 1000);
}

static void
syslog_line(enum log_level level, const char *line)
{
	static const int severity[] = { 3, 4, 5, 6, 7 };
	struct syslog_sink *s = &lg.sl;
	char ts[40], msg[SYSLOG_MAX_MSG], frame[SYSLOG_MAX_MSG + 16];
	int n, m;

	rfc5424_time(ts, sizeof(ts));
	n = snprintf(msg, sizeof(msg), "<%d>1 %s %s %s %ld - - %s",
	    SYSLOG_FACILITY * 8 + severity[level], ts, s->hostname, lg.prog,
	    (long)getpid(), line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = (int)sizeof(msg) - 1;
	if (!s->tcp) {
		syslog_send_udp(s, msg, (size_t)n);
		return;
	}
	m = snprintf(frame, sizeof(frame), "%d %s", n, msg);
	syslog_send_tcp(s, frame, (size_t)m);
}

/* RFC 5424 HOSTNAME: printable US-ASCII, no space, "-" when unknown. */
static void
own_hostname(char *buf, size_t len)
{
	char *p;

	if (gethostname(buf, len) == -1 || buf[0] == '\0') {
		snprintf(buf, len, "-");
		return;
	}
	buf[len - 1] = '\0';
	for (p = buf; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~')
			*p = '_';
}

void
tool_log_syslog(const struct config *cfg)
{
	struct syslog_sink *s = &lg.sl;
	struct addrinfo hints, *res = NULL;
	char port[16], msg[512];
	int rc;

	if (cfg->rsyslog_host == NULL)
		return;
	s->tcp = cfg->rsyslog_tcp;
	snprintf(s->dest, sizeof(s->dest), "%s://%s:%d", s->tcp ? "tcp" : "udp",
	    cfg->rsyslog_host, cfg->rsyslog_port);
	snprintf(port, sizeof(port), "%d", cfg->rsyslog_port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = s->tcp ? SOCK_STREAM : SOCK_DGRAM;
	if ((rc = getaddrinfo(cfg->rsyslog_host, port, &hints, &res)) != 0) {
		snprintf(msg, sizeof(msg), "rsyslog %s: %s; logging to stderr "
		    "only", s->dest, gai_strerror(rc));
		stderr_line(LOG_LVL_WARN, msg);
		return;
	}
	memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
	s->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	own_hostname(s->hostname, sizeof(s->hostname));
	s->max = LOG_LVL_NOTICE + (lg.verbosity > 0 ? lg.verbosity : 0);
	if (s->max > LOG_LVL_DEBUG)
		s->max = LOG_LVL_DEBUG;
	s->on = 1;
	if (s->tcp)
		syslog_send_tcp(s, NULL, 0);
	else if (syslog_connect(s) == -1)
		syslog_give_up(s);
	update_max_level();
}

/* --- progress ----------------------------------------------------------- */

const char *
tool_fmt_bytes(char *buf, size_t len, uint64_t n)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = -1;

	if (n < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)n);
		return buf;
	}
	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

const char *
tool_fmt_age(char *buf, size_t len, long long s)
{
	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, len, "%lld d %lld h", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%lld h %lld min", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(buf, len, "%lld min %lld s", s / 60, s % 60);
	else
		snprintf(buf, len, "%lld s", s);
	return buf;
}

/*
 * "s3-sync: 120 objects, 1.2 MiB uploaded, 400.0 KiB/s; 100 files done; 3 s".
 * Objects and bytes count what S3 confirmed; files count originals
 * delivered and removed (the summary's numbers).
 */
static void
progress_draw(const struct run_stats *s)
{
	char bytes[32], rate[32];
	long long now = mono_ms();
	double secs;

	if (now - lg.drawn_ms < PROGRESS_EVERY_MS)
		return;
	lg.drawn_ms = now;
	secs = (double)(now - lg.t0_ms) / 1000.0;
	tool_fmt_bytes(bytes, sizeof(bytes), s->sent);
	tool_fmt_bytes(rate, sizeof(rate),
	    secs > 0 ? (uint64_t)((double)s->sent / secs) : 0);
	fprintf(stderr, "\r\033[K%s: %llu %s, %s uploaded, %s/s; %llu files "
	    "done", lg.prog, (unsigned long long)s->objects,
	    lg.archives ? "archives" : "objects", bytes, rate,
	    (unsigned long long)s->files);
	if (s->failed > 0)
		fprintf(stderr, "; %llu failed", (unsigned long long)s->failed);
	fprintf(stderr, "; %.0f s", secs);
	fflush(stderr);
	lg.drawn = 1;
}

void
tool_progress_watch(const struct run_stats *s, time_t started)
{
	(void)started;
	if (!lg.progress_on)
		return;
	lg.stats = s;
	lg.t0_ms = lg.drawn_ms = mono_ms();
}

void
tool_progress(const struct run_stats *s)
{
	if (lg.progress_on && s != NULL)
		progress_draw(s);
}

void
tool_progress_end(void)
{
	progress_clear();
	lg.stats = NULL;
}

/* --- the handler -------------------------------------------------------- */

static void
tool_log_handler(enum log_level level, const char *line, void *arg)
{
	struct strbuf red = STRBUF_INIT;

	(void)arg;
	line = redact(line, &red);
	stderr_line(level, line);
	if (lg.sl.on && level <= lg.sl.max)
		syslog_line(level, line);
	strbuf_release(&red);
	if (lg.stats != NULL)
		progress_draw(lg.stats);
}

void
tool_log_init(const char *progname, int verbosity)
{
	int tty = isatty(STDERR_FILENO);
	int level = tty ? LOG_LVL_NOTICE : LOG_LVL_WARN;

	lg.prog = progname;
	lg.archives = strcmp(progname, "s3-batch") == 0;
	lg.verbosity = verbosity;
	level += verbosity;
	if (level < LOG_LVL_ERROR)
		level = LOG_LVL_ERROR;
	if (level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	lg.stderr_max = (enum log_level)level;
	lg.progress_on = tty && lg.stderr_max >= LOG_LVL_NOTICE;
	log_set_handler(tool_log_handler, NULL);
	update_max_level();
}

void
tool_log_close(void)
{
	size_t i;

	tool_progress_end();
	syslog_drop(&lg.sl);
	lg.sl.on = 0;
	for (i = 0; i < lg.nsecrets; i++) {
		explicit_bzero(lg.secrets[i], strlen(lg.secrets[i]));
		free(lg.secrets[i]);
		lg.secrets[i] = NULL;
	}
	lg.nsecrets = 0;
	fflush(stderr);
}
