/*
 * http.h: the libmicrohttpd glue and the route table.
 *
 * A route is a method and an OpenAPI-style pattern ("/v1/layers/{name}")
 * with a handler. The dispatcher in http.c does everything routes share
 * before a handler runs: 404 and 405, the name check, the bearer token,
 * the layer lookup (before any body is read), the Content-Type and the body
 * cap. A handler fills a struct bnd_response and returns 0, or returns the
 * negative errno of a problem it wrote with bnd_fail().
 */
#ifndef BND_HTTP_H
#define BND_HTTP_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "bn/buf.h"
#include "bn/error.h"
#include "daemon.h"
#include "embed.h"
#include "layer_change.h"
#include "registry.h"

enum bnd_route_flag {
	BND_ROUTE_LAYER = 1 << 0,   /* {name} must be an existing layer: looked up before the body */
	BND_ROUTE_MUTATES = 1 << 1, /* needs the bearer token when one is configured */
	BND_ROUTE_BODY = 1 << 2,    /* takes a JSON body */
	BND_ROUTE_NPY = 1 << 3,     /* also takes an application/x-npy body */
	BND_ROUTE_BINARY = 1 << 4,  /* also takes an application/octet-stream (safetensors) body */
	BND_ROUTE_PROBE = 1 << 5,   /* a probe or a scrape: no load that changes should make way for */
	BND_ROUTE_STORE = 1 << 6,   /* reaches the store: on a shared one its handler runs on a store worker */
};

struct bnd_response;

struct bnd_request {
	struct bnd_daemon *d;
	struct MHD_Connection *conn;
	const struct bnd_route *route;
	char name[BND_NAME_MAX + 1]; /* the {name} segment, "" when the route has none */
	struct bnd_layer *layer;     /* a reference, for BND_ROUTE_LAYER routes */
	bool body_npy;               /* Content-Type: application/x-npy */
	bool body_binary;            /* Content-Type: application/octet-stream */
	bool accept_npy;             /* Accept names application/x-npy */
	bool accept_npz;             /* Accept names application/x-npz */
	const char *body;            /* the whole body, NUL-terminated; "" when none */
	size_t body_len;
	size_t reserved;             /* bytes of the memory budget held, given back at completion */
	struct bnd_change *change;   /* the request's one change for the committer (bnd_request_defer) */
	int (*answer)(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc);
	void *answer_ctx;
};

/* What a handler returns when its answer waits for a commit (bnd_request_defer). */
#define BND_DEFERRED 1

struct bnd_response {
	unsigned status;
	const char *content_type;
	struct bn_buf body;
	const struct bnd_file *file; /* an embedded file to send instead of body */
	char etag[BND_ETAG_MAX];     /* "" : the layer's current one, if any */
	char location[BND_NAME_MAX + 32];
	char allow[64];
	const char *cache_control;
	bool authenticate;           /* add WWW-Authenticate: Bearer */
	unsigned retry_after;        /* seconds for a Retry-After header; 0: none */
};

struct bnd_route {
	const char *method;
	const char *pattern;
	int (*handler)(struct bnd_request *req, struct bnd_response *res);
	unsigned flags;
};

/* The route table (routes.c), in the order /metrics lists them. */
extern const struct bnd_route bnd_routes[];
extern const size_t bnd_routes_count;

/*
 * Find the route for method and path, the path as sent (percent-escapes
 * not yet decoded, no query). Segments are split on the raw '/' only, so
 * an escaped one (%2F) never adds a segment. Returns the route's index;
 * -EBADMSG when the path has a {name} segment (under any route, whatever
 * the method and whatever follows it) that does not decode to a valid
 * name, every decoded byte judged; -ENOENT when no pattern matches the
 * path; -ENOSYS when one does but not for this method, with the methods
 * it takes written to allow. On success name holds the decoded {name}
 * segment, or "" when the route has none.
 */
int bnd_route_match(const char *method, const char *path, char name[BND_NAME_MAX + 1],
		char *allow, size_t allow_size);

/* Write a problem (status from err's row in the errno table) to res. Returns err. */
int bnd_fail(struct bnd_response *res, int err, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The same with a library error; e->code or the errno's default code. Returns err. */
int bnd_fail_bn(struct bnd_response *res, int err, const struct bn_error *e);

/* Make res a 200 (or status) JSON answer; the caller appends to res->body. */
void bnd_json(struct bnd_response *res, unsigned status);

/* A request header or query argument, or NULL. */
const char *bnd_header(const struct bnd_request *req, const char *name);
const char *bnd_query(const struct bnd_request *req, const char *name);

/* Whether the comma-separated entity-tag list has etag (strong comparison) or is "*". */
bool bnd_etag_listed(const char *list, const char *etag);

/*
 * Reserve n bytes of the memory budget (budget.h) for req, held until the
 * request completes. what names the use for the detail ("the body").
 * Returns 0; or a problem in res: -ENOBUFS, 503 over_memory_budget with
 * Retry-After, when other requests hold too much of it now; -E2BIG, 413,
 * when n is more than the whole budget. Nothing is reserved on error.
 */
int bnd_reserve(struct bnd_request *req, struct bnd_response *res, size_t n, const char *what);

/* Give back n (at most what req holds) of req's reservation, when an estimate proved high. */
void bnd_unreserve(struct bnd_request *req, size_t n);

/*
 * bnd_reserve() for an answer of at most n bytes, and size res->body for
 * it so that writing it never reallocates. Same returns.
 */
int bnd_reserve_answer(struct bnd_request *req, struct bnd_response *res, size_t n);

/*
 * Free the request's body once the handler is done with it (decoded, say)
 * and give back its reservation; req->body becomes "".
 */
void bnd_request_drop_body(struct bnd_request *req);

/*
 * Queue req->change (filled as bnd_change_submit() wants it, for layer l,
 * with l's write_lock held) and answer later: once its commit is done the
 * request resumes and answer(req, res, ctx, rc) runs on a polling thread
 * with rc 0 (committed) or the failure, builds the answer (a 503 on
 * failure) and frees ctx. Meanwhile the request is suspended, holding no
 * thread. Returns BND_DEFERRED; or, when the commit queue is full or
 * stopping, a 503 problem with Retry-After in res (-EAGAIN, -ESHUTDOWN),
 * nothing queued, ctx still the caller's and change->next released.
 */
int bnd_request_defer(struct bnd_request *req, struct bnd_response *res, struct bnd_layer *l,
		int (*answer)(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc), void *ctx);

/*
 * The same for the changes of several layers committed as one (an
 * import): g filled as bnd_change_group_submit() wants it, every member's
 * write_lock held. On error nothing is queued and every member's next is
 * released.
 */
int bnd_request_defer_group(struct bnd_request *req, struct bnd_response *res, struct bnd_change_group *g,
		int (*answer)(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc), void *ctx);

/*
 * The 503 for a change whose commit failed (rc from an answer callback):
 * what names the change ("the train step"). Returns rc.
 */
int bnd_fail_commit(struct bnd_response *res, int rc, const char *what);

/* 0 when If-Match is absent or matches etag; else a 412 problem and -ESTALE. */
int bnd_check_if_match(const struct bnd_request *req, const char *etag, struct bnd_response *res);

/*
 * Start serving d on opt's address with a thread pool on epoll. The real
 * port goes to *ret_port. Returns the MHD daemon or NULL (logged).
 */
struct MHD_Daemon *bnd_http_start(struct bnd_daemon *d, unsigned *ret_port);

/* Stop accepting, wait (up to grace seconds) for in-flight requests, stop. */
void bnd_http_stop(struct MHD_Daemon *mhd, struct bnd_daemon *d, double grace);

#endif
