/*
 * http.c: the libmicrohttpd daemon and its access handler (http.h).
 *
 * Each request gets a struct conn_state as soon as its request line is in
 * (from the URI log callback, the one place that sees the path as sent,
 * before libmicrohttpd decodes it). On the access handler's first call,
 * when only the headers are in, everything that can be refused without the
 * body is refused (so an unknown layer is 404 and an oversized body 413
 * without reading the body). Otherwise the body is collected up to the cap
 * and the route's handler runs on the last call; a chunked body that
 * passes the cap is read on and dropped, and answered 413 then, since
 * libmicrohttpd cannot queue an answer in the middle of an upload.
 *
 * A body draws on the memory budget (budget.h) before it is read: all of a
 * declared Content-Length at once, a chunked body a step at a time as it
 * grows. Whatever a request reserved is given back when it completes.
 *
 * A handler that queues a change for the committer returns BND_DEFERRED:
 * the connection is then suspended until the change's commit is done, and
 * the answer is built and queued when libmicrohttpd calls again after the
 * committer resumed it (http_defer.c).
 *
 * On a shared store (PostgreSQL) a route that reaches the store
 * (BND_ROUTE_STORE) runs on a store worker instead: its layer is looked up
 * there too, once the body is in, and the polling thread only queues the
 * answer the worker built (http_store.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "budget.h"
#include "commit.h"
#include "conns.h"
#include "errors.h"
#include "http_conn.h"
#include "http.h"
#include "replica.h"
#include "metrics.h"
#include "store_workers.h"

/* A chunked body reserves its budget in steps of this many bytes. */
#define BODY_RESERVE_STEP ((size_t)1 << 20)

/* Constant-time comparison of the Authorization header with "Bearer <token>". */
static bool token_ok(const struct bnd_daemon *d, const char *auth)
{
	unsigned char diff = 0;
	size_t n;

	if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
		return false;
	auth += 7;
	n = strlen(auth);
	for (size_t i = 0; i < d->token_len; i++)
		diff |= (unsigned char)(d->token[i] ^ (i < n ? auth[i] : 0));
	return diff == 0 && n == d->token_len;
}

/* Content-Type: JSON when absent or application/json; .npy where the route takes it. */
static int check_media(struct conn_state *cs)
{
	struct bnd_request *req = &cs->req;
	const char *type = bnd_header(req, "Content-Type");
	const char *accept = bnd_header(req, "Accept");
	size_t n;

	req->accept_npy = accept && strcasestr(accept, "application/x-npy");
	req->accept_npz = accept && strcasestr(accept, "application/x-npz");
	if (!type)
		return 0;
	type += strspn(type, " \t");
	n = strcspn(type, " \t;");
	if (n == 16 && strncasecmp(type, "application/json", n) == 0)
		return 0;
	if ((req->route->flags & BND_ROUTE_NPY) && n == 17 && strncasecmp(type, "application/x-npy", n) == 0) {
		req->body_npy = true;
		return 0;
	}
	if ((req->route->flags & BND_ROUTE_BINARY) && n == 24 &&
	    strncasecmp(type, "application/octet-stream", n) == 0) {
		req->body_binary = true;
		return 0;
	}
	return bnd_fail(&cs->res, -EMEDIUMTYPE, NULL, "Content-Type %.*s is not accepted here; send %s",
		(int)(n < 64 ? n : 64), type, (req->route->flags & BND_ROUTE_NPY) ?
		"application/json or application/x-npy" : (req->route->flags & BND_ROUTE_BINARY) ?
		"application/json or application/octet-stream (safetensors)" : "application/json");
}

/* Refuse a declared Content-Length over the cap or the budget, and size the buffer for it. */
static int check_length(struct conn_state *cs)
{
	const char *len = bnd_header(&cs->req, "Content-Length");
	size_t max = cs->req.d->opt.max_body_bytes;
	unsigned long long n;
	char *end;
	int rc;

	if (!len)
		return 0;
	errno = 0;
	n = strtoull(len, &end, 10);
	if (errno || end == len || *end || n > max)
		return bnd_fail(&cs->res, -E2BIG, BN_E_TOO_LARGE,
			"the body is over the limit of %zu bytes (--max-body-bytes)", max);
	if (n == 0)
		return 0;
	/* Before a byte is read: a refused body is never held. */
	rc = bnd_reserve(&cs->req, &cs->res, (size_t)n + 1, "the body");
	if (rc < 0)
		return rc;
	cs->body_reserved = (size_t)n + 1;
	if ((cs->req.route->flags & (BND_ROUTE_BODY | BND_ROUTE_NPY)) && n > 0)
		bn_buf_reserve(&cs->body, (size_t)n); /* a failure shows again on append */
	return 0;
}

int bnd_conn_find_layer(struct conn_state *cs)
{
	struct bnd_request *req = &cs->req;
	/* On a shared store this confirms the cached layer is the stored one. */
	int rc = bnd_replica_layer(req->d, req->name, &req->layer);

	if (rc == -ENOENT)
		return bnd_fail(&cs->res, rc, NULL, "no layer named %s", req->name);
	if (rc < 0)
		return bnd_fail(&cs->res, rc, NULL, "the store could not be read; try again");
	return 0;
}

bool bnd_offload_wanted(const struct conn_state *cs)
{
	return cs->req.d->workers && (cs->req.route->flags & BND_ROUTE_STORE);
}

/* Everything decided from the headers alone. 0, or a problem in cs->res. */
static int check_headers(struct conn_state *cs)
{
	struct bnd_request *req = &cs->req;
	int i = bnd_route_match(cs->method, cs->raw_path, req->name, cs->res.allow, sizeof(cs->res.allow));

	if (i == -EBADMSG)
		return bnd_fail(&cs->res, i, BND_E_INVALID_NAME, "invalid layer name: use 1 to %d of A-Z a-z "
			"0-9 . _ -, starting with a letter or digit (a percent-escape is judged by the byte "
			"it stands for)", BND_NAME_MAX);
	if (i == -ENOENT)
		return bnd_fail(&cs->res, i, NULL, "no such path: %.100s", cs->path);
	if (i == -ENOSYS)
		return bnd_fail(&cs->res, i, NULL, "%s is not allowed here; allowed: %s",
			cs->method, cs->res.allow);
	cs->slot = (size_t)i;
	req->route = &bnd_routes[i];
	if ((req->route->flags & BND_ROUTE_MUTATES) && req->d->token &&
	    !token_ok(req->d, bnd_header(req, "Authorization"))) {
		cs->res.authenticate = true;
		return bnd_fail(&cs->res, -EACCES, NULL, "this request changes state: send Authorization: Bearer <token>");
	}
	if (req->route->flags & BND_ROUTE_LAYER) {
		int rc;

		/*
		 * On a shared store a store worker finds it, with the body in: no
		 * store call here. Should the headers decide the answer, a worker
		 * still finds the layer first (an unknown one is 404 whatever the
		 * headers say), before the body is read.
		 */
		if (bnd_offload_wanted(cs)) {
			cs->lookup_first = true;
		} else {
			rc = bnd_conn_find_layer(cs);
			if (rc < 0)
				return rc;
		}
	}
	if (req->route->flags & BND_ROUTE_BODY) {
		int rc = check_media(cs);

		if (rc < 0)
			return rc;
	}
	return check_length(cs);
}

/* The Content-Type of an embedded file, by its extension. */
static const char *media_type(const char *name)
{
	static const char *const types[][2] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".json", "application/json" },
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i][0]) == 0)
			return types[i][1];
	return "application/octet-stream";
}

/* Serve an embedded dashboard file for GET /<basename>, if there is one. */
static bool static_file(struct conn_state *cs, const char *url)
{
	if ((strcmp(cs->method, "GET") && strcmp(cs->method, "HEAD")) || url[0] != '/')
		return false;
	for (size_t i = 0; i < bnd_dashboard_count; i++) {
		if (strcmp(url + 1, bnd_dashboard[i].name) == 0 && strcmp(bnd_dashboard[i].name, "index.html") != 0) {
			cs->res.file = &bnd_dashboard[i];
			cs->res.content_type = media_type(bnd_dashboard[i].name);
			cs->res.status = 200;
			cs->slot = BND_METRICS_SLOT_STATIC(bnd_routes_count);
			return true;
		}
	}
	return false;
}

/*
 * The URI log callback: the request line is in. Keeps the path as sent
 * (libmicrohttpd decodes it before the access handler, and a %00 would
 * cut it short there); what it returns is the request's first *con_cls.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct bnd_daemon *d = cls;
	struct conn_state *cs = calloc(1, sizeof(*cs));

	(void)conn;
	if (!cs)
		return NULL;
	/* Bounded by libmicrohttpd's per-connection memory limit. */
	cs->raw_path = strndup(uri ? uri : "", uri ? strcspn(uri, "?") : 0);
	if (!cs->raw_path) {
		free(cs);
		return NULL;
	}
	/*
	 * In flight from its request line on, not from the handler's first
	 * call: a SIGTERM between the two must still let it finish.
	 */
	atomic_fetch_add(&d->in_flight, 1);
	return cs;
}

static void start_request(struct conn_state *cs, struct bnd_daemon *d, struct MHD_Connection *conn,
		const char *method)
{
	cs->begun = true;
	cs->started = bnd_metrics_clock();
	cs->req.d = d;
	cs->req.conn = conn;
	cs->slot = BND_METRICS_SLOT_UNMATCHED(bnd_routes_count);
	snprintf(cs->method, sizeof(cs->method), "%s", method);
	snprintf(cs->path, sizeof(cs->path), "%s", cs->raw_path);
	/* Keep control characters out of the log. */
	for (char *p = cs->path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	bn_buf_init(&cs->res.body, 0);
	bn_buf_init(&cs->body, d->opt.max_body_bytes);
	bnd_defer_init(cs);
	/* Files too are found by the path as sent: "/app.js%00x" is not app.js. */
	if (static_file(cs, cs->raw_path) || check_headers(cs) < 0)
		cs->ready = true;
}

/* Grow the body's reservation to hold size more bytes (a chunked body). 0, or a problem. */
static int reserve_body(struct conn_state *cs, size_t size)
{
	size_t max = cs->req.d->opt.max_body_bytes + 1;
	size_t need = cs->body.len + size + 1, want;
	int rc;

	/* Past the cap the append below refuses it with 413. */
	if (need <= cs->body_reserved || need > max)
		return 0;
	want = need / BODY_RESERVE_STEP * BODY_RESERVE_STEP + BODY_RESERVE_STEP;
	if (want > max)
		want = max;
	rc = bnd_reserve(&cs->req, &cs->res, want - cs->body_reserved, "the body");
	if (rc == 0)
		cs->body_reserved = want;
	return rc;
}

void bnd_request_drop_body(struct bnd_request *req)
{
	struct conn_state *cs = (struct conn_state *)req;

	bn_buf_finish(&cs->body);
	bnd_unreserve(req, cs->body_reserved);
	cs->body_reserved = 0;
	req->body = "";
	req->body_len = 0;
}

/* Take one piece of the body. 0, or a problem in cs->res. */
static int collect(struct conn_state *cs, const char *data, size_t size)
{
	int rc = reserve_body(cs, size);

	if (rc < 0)
		return rc;
	rc = bn_buf_append(&cs->body, data, size);
	if (rc == -E2BIG)
		return bnd_fail(&cs->res, rc, BN_E_TOO_LARGE, "the body is over the limit of %zu bytes "
			"(--max-body-bytes)", cs->req.d->opt.max_body_bytes);
	if (rc < 0)
		return bnd_fail(&cs->res, rc, NULL, "out of memory reading the body");
	return 0;
}

void bnd_conn_run_handler(struct conn_state *cs)
{
	struct bnd_request *req = &cs->req;
	int rc;

	req->body = cs->body.data ? cs->body.data : "";
	req->body_len = cs->body.len;
	rc = req->route->handler(req, &cs->res);
	if (rc == 0 && cs->res.body.err)
		bnd_fail(&cs->res, cs->res.body.err, NULL, "the answer could not be built (%s)",
			cs->res.body.err == -E2BIG ? "too large" : "out of memory");
	bnd_request_drop_body(req);
}

static void add_headers(struct conn_state *cs, struct MHD_Response *r)
{
	struct bnd_response *res = &cs->res;

	if (res->content_type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
	if (!res->etag[0] && cs->req.layer && res->status != 204 && !cs->req.layer->deleted) {
		struct bnd_snapshot *snap = bnd_layer_snapshot(cs->req.layer);

		bnd_snapshot_etag(snap, res->etag);
		bnd_snapshot_unref(snap);
	}
	if (res->etag[0])
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, res->etag);
	if (res->location[0])
		MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, res->location);
	if (res->allow[0] && res->status == 405)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, res->allow);
	if (res->cache_control)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, res->cache_control);
	if (res->authenticate)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (res->retry_after) {
		char secs[16];

		snprintf(secs, sizeof(secs), "%u", res->retry_after);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	}
}

/* Build the embedded file's answer, 304 when If-None-Match has its ETag. */
static struct MHD_Response *file_response(struct conn_state *cs)
{
	const struct bnd_file *f = cs->res.file;
	const char *inm = bnd_header(&cs->req, "If-None-Match");

	snprintf(cs->res.etag, sizeof(cs->res.etag), "%s", f->etag);
	cs->res.cache_control = "no-cache";
	if (inm && strstr(inm, f->etag)) {
		cs->res.status = 304;
		return MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	}
	return MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result respond(struct conn_state *cs)
{
	struct MHD_Response *r;
	enum MHD_Result ok;

	if (cs->res.file) {
		r = file_response(cs);
	} else {
		size_t len = 0;
		char *data = bn_buf_steal(&cs->res.body, &len);

		r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
		if (!r)
			free(data);
	}
	if (!r)
		return MHD_NO;
	add_headers(cs, r);
	ok = MHD_queue_response(cs->req.conn, cs->res.status, r);
	MHD_destroy_response(r);
	cs->answered = ok == MHD_YES;
	if (cs->answered)
		bnd_conns_answering(cs->req.conn);
	bnd_admit_release(cs);
	return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
		const char *method, const char *version, const char *upload_data,
		size_t *upload_size, void **con_cls)
{
	struct conn_state *cs = *con_cls;

	(void)url; /* decoded, and cut at a %00: routes use cs->raw_path */
	(void)version;
	if (!cs)
		return MHD_NO; /* out of memory in on_uri */
	if (!cs->begun) {
		start_request(cs, cls, conn, method);
		/* Its layer unknown yet (a shared store): a worker finds it, then answers. */
		if (cs->ready && cs->lookup_first && bnd_offload(cs))
			return MHD_YES;
		/* Answer now what the headers decided, before a byte of the body is read. */
		return cs->ready ? respond(cs) : MHD_YES;
	}
	if (cs->offloaded) {
		/* Resumed: a store worker built the answer. */
		if (!bnd_offload_done(cs))
			return MHD_YES;
		*upload_size = 0; /* a body not read yet, when the headers decided: dropped */
		cs->offloaded = false;
		return respond(cs);
	}
	if (cs->deferred) {
		/* Resumed: the change's commit is done. */
		if (!bnd_defer_woken(cs))
			return MHD_YES;
		bnd_defer_answer(cs);
		return respond(cs);
	}
	if (cs->answered) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (!cs->ready && collect(cs, upload_data, n) < 0) {
			/*
			 * libmicrohttpd takes no answer in the middle of a body: drop
			 * what was read, discard the rest and answer at its end.
			 */
			bnd_request_drop_body(&cs->req);
			cs->ready = true;
		}
		/* The rest of a refused body is dropped as it comes, until --request-timeout. */
		return MHD_YES;
	}
	/* A shared store is waited on by a store worker, never by this thread. */
	if (!cs->ready && bnd_offload_wanted(cs) && bnd_offload(cs))
		return MHD_YES;
	if (!cs->ready) {
		unsigned flags = cs->req.route->flags;

		if (flags & BND_ROUTE_MUTATES) {
			if (!bnd_admit_change(cs))
				return MHD_YES; /* resumed when its turn comes */
		} else if (!(flags & BND_ROUTE_PROBE)) {
			bnd_admit_other();
		}
		bnd_conn_run_handler(cs);
		/* A change waits for its commit without holding this thread. */
		if (cs->deferred && !bnd_defer_wait(cs))
			return MHD_YES;
	}
	return respond(cs);
}

/*
 * One access log line on stderr: the UTC time it is written (RFC 3339 with
 * milliseconds), method, path, outcome (the status, or "aborted (code)") and
 * duration. Built whole, then written with one write(2), so lines from the
 * worker threads never interleave (one write of under PIPE_BUF bytes is not
 * split, even into a pipe).
 */
static void log_access(const struct conn_state *cs, const char *outcome, double took)
{
	char line[PATH_LOG_MAX + 160], when[32];
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ldZ %s %s %s %.0fus\n", when, ts.tv_nsec / 1000000,
		cs->method, cs->path, outcome, took * 1e6);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) { /* not with these sizes; still one whole line if it did */
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	while (write(STDERR_FILENO, line, (size_t)n) < 0 && errno == EINTR)
		;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		enum MHD_RequestTerminationCode toe)
{
	struct bnd_daemon *d = cls;
	struct conn_state *cs = *con_cls;
	char outcome[32];
	double took;

	bnd_conns_request_done(conn);
	if (!cs)
		return;
	*con_cls = NULL;
	if (!cs->begun) {
		/* libmicrohttpd refused it (a malformed or too large header) before the handler saw it. */
		free(cs->raw_path);
		free(cs);
		atomic_fetch_sub(&d->in_flight, 1);
		return;
	}
	/* Never suspended at completion (the committer wakes every change first): free its context. */
	if (cs->deferred && bnd_defer_woken(cs))
		bnd_defer_answer(cs);
	bnd_admit_release(cs);
	took = bnd_metrics_clock() - cs->started;
	if (cs->answered) {
		bnd_metrics_request(cs->slot, cs->method, cs->res.status, took);
		snprintf(outcome, sizeof(outcome), "%u", cs->res.status);
	} else {
		snprintf(outcome, sizeof(outcome), "aborted (%d)", (int)toe);
	}
	log_access(cs, outcome, took);
	bnd_layer_unref(cs->req.layer);
	bn_buf_finish(&cs->body);
	bn_buf_finish(&cs->res.body);
	/* Answered or aborted, everything the request reserved goes back. */
	bnd_unreserve(&cs->req, cs->req.reserved);
	free(cs->raw_path);
	free(cs);
	atomic_fetch_sub(&d->in_flight, 1);
}

__attribute__((format(printf, 2, 0)))
static void log_mhd(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("http: ", stderr);
	vfprintf(stderr, fmt, ap);
}

struct MHD_Daemon *bnd_http_start(struct bnd_daemon *d, unsigned *ret_port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG |
		MHD_ALLOW_SUSPEND_RESUME;
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *mhd;
	/* Near the limit, the newest tenth of the slots is kept for new clients. */
	struct bnd_conns_config cc = {
		.max_connections = d->opt.max_connections,
		.reserve = d->opt.max_connections / 10,
		.request_timeout = d->opt.request_timeout,
	};
	int rc;

	if (inet_pton(AF_INET, d->opt.host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)d->opt.port);
	} else if (inet_pton(AF_INET6, d->opt.host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)d->opt.port);
		flags |= MHD_USE_IPv6;
	} else {
		fprintf(stderr, "http: %s is not an IP address\n", d->opt.host);
		return NULL;
	}
	rc = bnd_conns_create(&cc, &d->conns);
	if (rc < 0) {
		fprintf(stderr, "http: cannot start the request reaper: %s\n", strerror(-rc));
		return NULL;
	}
	mhd = MHD_start_daemon(flags, (uint16_t)d->opt.port, NULL, NULL, on_request, d,
		/* First, so that MHD logs nothing of its own before it. */
		MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, d->opt.threads,
		/* Idle time, restarted by every byte; --request-timeout bounds a whole request. */
		MHD_OPTION_CONNECTION_TIMEOUT, 30u,
		MHD_OPTION_CONNECTION_LIMIT, d->opt.max_connections,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, d->opt.max_per_client,
		MHD_OPTION_NOTIFY_CONNECTION, bnd_conns_notify, d->conns,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, d,
		/*
		 * The pool holds the headers and the read buffer (half of it), and
		 * libmicrohttpd zeroes all of it after every request: at 128 KiB
		 * that was 196k of the 313k instructions of a small eval. Bodies
		 * go to their own buffer, so 32 KiB (the library's default) costs
		 * a large upload only smaller reads.
		 */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024),
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, d,
		MHD_OPTION_END);
	if (!mhd) {
		fprintf(stderr, "http: cannot listen on %s:%u: %s\n", d->opt.host, d->opt.port, strerror(errno));
		bnd_conns_destroy(d->conns);
		d->conns = NULL;
		return NULL;
	}
	info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
	*ret_port = info ? info->port : d->opt.port;
	return mhd;
}

/*
 * Hand libmicrohttpd the connections still waiting in the listening
 * socket's backlog: their clients connected, and may have sent a request,
 * before the daemon stopped accepting, and are served as those it had
 * accepted are. (It closes a connection it cannot take.)
 */
static void adopt_backlog(struct MHD_Daemon *mhd, MHD_socket fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return;
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (c < 0 && errno == EINTR)
			continue;
		if (c < 0)
			return;
		MHD_add_connection(mhd, c, (struct sockaddr *)&ss, len);
	}
}

void bnd_http_stop(struct MHD_Daemon *mhd, struct bnd_daemon *d, double grace)
{
	MHD_socket fd = MHD_quiesce_daemon(mhd);
	double until = bnd_metrics_clock() + grace;
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	/*
	 * Refuse new connections now, but keep the descriptor open until the
	 * daemon has stopped: its threads may still be taking the listening
	 * socket out of their epoll sets, which fails on a closed descriptor.
	 */
	if (fd != MHD_INVALID_SOCKET) {
		adopt_backlog(mhd, fd);
		shutdown(fd, SHUT_RDWR);
	}
	/*
	 * Let the requests under way finish; those waiting for a commit are
	 * answered as it ends. A request whose bytes arrived before the signal
	 * but were not read yet is under way too.
	 */
	while ((atomic_load(&d->in_flight) > 0 || bnd_conns_unread(d->conns)) && bnd_metrics_clock() < until)
		nanosleep(&tick, NULL);
	/*
	 * Commit what is still queued (past the grace) and take no more
	 * changes: every suspended request is resumed before the daemon
	 * stops, which libmicrohttpd requires. On a shared store the workers
	 * answer what no worker took yet with 503 and finish what they hold.
	 */
	bnd_admit_open_all();
	bnd_store_workers_stop(d->workers);
	bnd_committer_stop(d->committer);
	/*
	 * What was woken or resumed just now gets its answer (503 for a change
	 * the committer no longer takes) before the connections close, for at
	 * most a second more.
	 */
	until = bnd_metrics_clock() + 1.0;
	while (atomic_load(&d->in_flight) > 0 && bnd_metrics_clock() < until)
		nanosleep(&tick, NULL);
	MHD_stop_daemon(mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	bnd_conns_destroy(d->conns);
	d->conns = NULL;
}
