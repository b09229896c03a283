/*
 * http_defer.c: requests whose answer waits for a commit (http.h,
 * bnd_request_defer).
 *
 * A handler that changes a layer queues the change for the committer and
 * returns BND_DEFERRED. The access handler then suspends the connection
 * (MHD_suspend_connection), so the polling thread goes on serving other
 * connections; the committer, once the change's commit is done, marks the
 * request woken and resumes it; libmicrohttpd calls the access handler
 * again, which builds the answer and queues it. One lock orders the two
 * sides: a commit done before the handler could suspend is seen there, and
 * the request is answered at once without suspending.
 *
 * On a shared store (PostgreSQL) a change is not queued: it is written and
 * committed at once on the polling thread, in the transaction that locked
 * its row (layer_change.h, bnd_change_run), and the request is answered
 * as a woken one.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>

#include "conns.h"
#include "errors.h"
#include "http_conn.h"
#include "store.h"

static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;

/* The committer's side: the change's commit is done. */
static void wake(struct bnd_change *ch)
{
	struct conn_state *cs = (struct conn_state *)((char *)ch - offsetof(struct conn_state, change));

	pthread_mutex_lock(&wait_lock);
	cs->woken = true;
	if (cs->suspended) {
		cs->suspended = false;
		MHD_resume_connection(cs->req.conn);
	}
	pthread_mutex_unlock(&wait_lock);
}

void bnd_defer_init(struct conn_state *cs)
{
	cs->change.wake = wake;
	cs->req.change = &cs->change;
}

/* Queue l's change (g NULL) or the group g, and defer the answer. */
static int defer(struct bnd_request *req, struct bnd_response *res, struct bnd_layer *l,
		struct bnd_change_group *g,
		int (*answer)(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc), void *ctx)
{
	struct conn_state *cs = (struct conn_state *)req;
	int rc;

	req->answer = answer;
	req->answer_ctx = ctx;
	cs->deferred = true;
	if (g)
		g->lead = req->change;
	if (bnd_store_shared(req->d->store)) {
		/* Each change its own transaction, committed now; woken before this returns. */
		if (g)
			bnd_change_group_run(req->d->store, &req->d->registry, g);
		else
			bnd_change_run(req->d->store, &req->d->registry, l, req->change);
		return BND_DEFERRED;
	}
	if (g) {
		rc = bnd_change_group_submit(req->d->committer, &req->d->registry, g);
	} else {
		rc = bnd_change_submit(req->d->committer, &req->d->registry, l, req->change);
	}
	if (rc == 0)
		return BND_DEFERRED;
	cs->deferred = false;
	req->answer = NULL;
	req->answer_ctx = NULL;
	if (rc == -ENOMEM)
		return bnd_fail(res, rc, NULL, "out of memory; nothing was changed");
	res->retry_after = 1;
	if (rc == -EAGAIN)
		return bnd_fail(res, rc, NULL, "%zu changes are already waiting for the store, the limit "
			"(--commit-queue); nothing was changed, retry shortly", req->d->opt.commit_queue);
	return bnd_fail(res, rc, NULL, "the server is shutting down; nothing was changed");
}

int bnd_request_defer(struct bnd_request *req, struct bnd_response *res, struct bnd_layer *l,
		int (*answer)(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc), void *ctx)
{
	return defer(req, res, l, NULL, answer, ctx);
}

int bnd_request_defer_group(struct bnd_request *req, struct bnd_response *res, struct bnd_change_group *g,
		int (*answer)(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc), void *ctx)
{
	return defer(req, res, NULL, g, answer, ctx);
}

int bnd_fail_commit(struct bnd_response *res, int rc, const char *what)
{
	if (rc == -ECANCELED)
		return bnd_fail(res, rc, NULL, "%s was computed from an earlier change of the layer whose "
			"commit failed; the layer is as it was last committed", what);
	if (rc == -ESHUTDOWN)
		return bnd_fail(res, rc, NULL, "the server is shutting down; %s was not committed", what);
	if (rc == -EEXIST)
		return bnd_fail(res, rc, NULL, "%s conflicts with a change another server sharing the store "
			"made meanwhile; nothing of it was committed, read the layer again and retry", what);
	return bnd_fail(res, rc, NULL, "the store could not commit %s (nor anything committed with it); "
		"the layer is as it was last committed", what);
}

void bnd_defer_answer(struct conn_state *cs)
{
	struct bnd_request *req = &cs->req;
	int (*answer)(struct bnd_request *, struct bnd_response *, void *, int) = req->answer;

	cs->deferred = false;
	req->answer = NULL;
	if (answer && answer(req, &cs->res, req->answer_ctx, cs->change.rc) == 0 && cs->res.body.err)
		bnd_fail(&cs->res, cs->res.body.err, NULL, "the answer could not be built (%s)",
			cs->res.body.err == -E2BIG ? "too large" : "out of memory");
	req->answer_ctx = NULL;
	cs->ready = true;
}

bool bnd_defer_wait(struct conn_state *cs)
{
	bool done;

	/* The request is all in: from here on it waits for the store, not for the client. */
	bnd_conns_answering(cs->req.conn);
	pthread_mutex_lock(&wait_lock);
	done = cs->woken;
	if (!done) {
		cs->suspended = true;
		MHD_suspend_connection(cs->req.conn);
	}
	pthread_mutex_unlock(&wait_lock);
	if (done)
		bnd_defer_answer(cs);
	return done;
}

bool bnd_defer_woken(struct conn_state *cs)
{
	bool done;

	pthread_mutex_lock(&wait_lock);
	done = cs->woken;
	pthread_mutex_unlock(&wait_lock);
	return done;
}
