/*
 * http_store.c: requests that wait on a shared store run on the store
 * workers (store_workers.h), so that no polling thread ever waits on
 * PostgreSQL: not on a slow server, a row another replica holds locked, or
 * a restart.
 *
 * Once a request's body is in, the polling thread queues it and suspends
 * the connection (MHD_suspend_connection), and goes on serving the others.
 * A worker finds the layer (confirming the cached version), runs the
 * route's handler unchanged (lock, compute, write, commit: a change on a
 * shared store is committed before the handler returns, http_defer.c),
 * builds the answer, and resumes the connection; the polling thread then
 * only queues that answer.
 *
 * What a worker calls of libmicrohttpd: MHD_lookup_connection_value (the
 * handler's header and query lookups, bnd_header and bnd_query), which
 * walks the request's header list and changes nothing, and a suspended
 * connection's list is not changed by anyone; and MHD_resume_connection,
 * which is meant to be called from any thread. Everything else (the
 * reaper's exemption, the suspension, the answer) happens on the polling
 * thread. One lock orders the two sides: the worker resumes only a
 * connection already suspended.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>

#include "conns.h"
#include "errors.h"
#include "http_conn.h"
#include "replica.h"

static pthread_mutex_t offload_lock = PTHREAD_MUTEX_INITIALIZER;

/* Hand cs back to its polling thread, its answer ready. */
static void finish(struct conn_state *cs)
{
	cs->ready = true;
	pthread_mutex_lock(&offload_lock);
	cs->offload_done = true;
	MHD_resume_connection(cs->req.conn);
	pthread_mutex_unlock(&offload_lock);
}

/* On a worker (or, cancelled, on the stopping thread). */
static void run(struct bnd_store_job *job, bool cancelled)
{
	struct conn_state *cs = (struct conn_state *)((char *)job - offsetof(struct conn_state, job));

	if (cancelled) {
		bnd_request_drop_body(&cs->req);
		cs->res.retry_after = 1;
		bnd_fail(&cs->res, -ESHUTDOWN, NULL, "the server is shutting down; nothing was changed");
	} else if (cs->ready) {
		/* The headers decided the answer, but an unknown layer is 404 whatever they say. */
		if (bnd_replica_layer(cs->req.d, cs->req.name, &cs->req.layer) == -ENOENT) {
			cs->res.retry_after = 0;
			bnd_fail(&cs->res, -ENOENT, NULL, "no layer named %s", cs->req.name);
		}
	} else if ((cs->req.route->flags & BND_ROUTE_LAYER) && bnd_conn_find_layer(cs) < 0) {
		bnd_request_drop_body(&cs->req);
	} else {
		bnd_conn_run_handler(cs);
		/* A change on a shared store is committed (woken) before its handler returns. */
		if (cs->deferred && bnd_defer_woken(cs))
			bnd_defer_answer(cs);
	}
	finish(cs);
}

bool bnd_offload(struct conn_state *cs)
{
	struct bnd_request *req = &cs->req;
	int rc;

	/* The request is all in: from here on it waits for the store, not for the client. */
	bnd_conns_answering(req->conn);
	cs->job.run = run;
	pthread_mutex_lock(&offload_lock);
	rc = bnd_store_workers_submit(req->d->workers, &cs->job);
	if (rc == 0) {
		cs->offloaded = true;
		MHD_suspend_connection(req->conn);
	}
	pthread_mutex_unlock(&offload_lock);
	if (rc == 0)
		return true;
	bnd_request_drop_body(req);
	cs->res.retry_after = 1;
	if (rc == -EAGAIN)
		bnd_fail(&cs->res, rc, NULL, "%zu requests are already waiting for the store, the limit "
			"(--commit-queue); nothing was changed, retry shortly", req->d->opt.commit_queue);
	else
		bnd_fail(&cs->res, rc, NULL, "the server is shutting down; nothing was changed");
	cs->ready = true;
	return false;
}

bool bnd_offload_done(struct conn_state *cs)
{
	bool done;

	pthread_mutex_lock(&offload_lock);
	done = cs->offload_done;
	pthread_mutex_unlock(&offload_lock);
	return done;
}
