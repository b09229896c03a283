/*
 * http_conn.h: what http.c and http_defer.c share about a request under way.
 */
#ifndef BND_HTTP_CONN_H
#define BND_HTTP_CONN_H

#include <microhttpd.h>
#include <stdbool.h>

#include "http.h"
#include "store_workers.h"

#define PATH_LOG_MAX 200

struct conn_state {
	struct bnd_request req;  /* first: bnd_request_drop_body() finds the rest from it */
	struct bnd_response res;
	struct bn_buf body;
	size_t body_reserved; /* of req.reserved, what the body holds */
	size_t slot;          /* metrics slot: route index or BND_METRICS_SLOT_* */
	bool begun;           /* the access handler has seen it */
	bool answered;        /* a response is queued */
	bool ready;           /* res is final; queue it at the next call */
	bool deferred;        /* the handler queued a change; the answer waits for its commit */
	bool woken;           /* under bnd_wait_lock: the change's commit is done */
	bool suspended;       /* under bnd_wait_lock: suspended until then */
	bool offloaded;       /* queued for a store worker or on one; suspended meanwhile */
	bool offload_done;    /* under the offload lock: the worker is done, res is final */
	bool lookup_first;    /* a worker finds the layer before anything else is decided */
	struct bnd_store_job job; /* the store workers' */
	bool admitted;        /* a change let run (http_admit.c) */
	bool admit_released;  /* ...and answered or ended: its place given back */
	struct conn_state *admit_next; /* waiting its turn to run */
	struct bnd_change change;
	double started;
	char *raw_path;       /* the path as sent, before percent-decoding; no query */
	char method[8];
	char path[PATH_LOG_MAX + 1];
};

/* Point req->change at cs's change, ready for bnd_request_defer(). */
void bnd_defer_init(struct conn_state *cs);

/*
 * After the handler deferred its answer: suspend the connection until the
 * commit is done, or, when it is done already, build the answer now.
 * Returns true when the answer is ready to queue.
 */
bool bnd_defer_wait(struct conn_state *cs);

/* Whether the deferred change's commit is done. */
bool bnd_defer_woken(struct conn_state *cs);

/* Build the deferred answer once the commit is done (on resumption). */
void bnd_defer_answer(struct conn_state *cs);

/*
 * The layer of a BND_ROUTE_LAYER route into cs->req.layer (on a shared
 * store this reads the store). 0, or a problem in cs->res.
 */
int bnd_conn_find_layer(struct conn_state *cs);

/* Run the route's handler on the collected body; the body is dropped after. */
void bnd_conn_run_handler(struct conn_state *cs);

/*
 * Whether cs's route runs on the store workers: on a shared store, every
 * route with BND_ROUTE_STORE.
 */
bool bnd_offload_wanted(const struct conn_state *cs);

/*
 * On a polling thread, once the body is in: queue cs for a store worker
 * (http_store.c), which finds the layer, runs the handler, builds the
 * answer (a deferred one too) and resumes the connection. Returns true
 * when queued, the connection suspended; false when refused (the queue is
 * full, or stopping), a 503 problem with Retry-After in cs->res, ready.
 */
bool bnd_offload(struct conn_state *cs);

/* After resumption: whether the worker is done with cs (its answer ready to queue). */
bool bnd_offload_done(struct conn_state *cs);

/*
 * A fair share between changes and the rest (http_admit.c). Before a
 * change's handler runs: true when it may run now; false when it waits
 * its turn, its connection suspended until a running change is answered
 * (then it is admitted and resumed). Admits at once while no request other
 * than a change began lately, and when opt.fair_changes is 0.
 */
bool bnd_admit_change(struct conn_state *cs);

/* Note that a request other than a change begins. */
void bnd_admit_other(void);

/* An admitted change was answered or ended: let the next one run. Idempotent. */
void bnd_admit_release(struct conn_state *cs);

/* Shutting down: resume every waiting change, and admit every later one at once. */
void bnd_admit_open_all(void);

#endif
