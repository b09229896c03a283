/*
 * routes/changes.c: the steps every change of a layer shares (routes.h):
 * computed on a polling thread under the layer's write lock, committed by
 * the committer (SQLite) or at once in the transaction that locked the
 * layer's row (PostgreSQL), answered once committed.
 */
#include <stdlib.h>

#include "errors.h"
#include "replica.h"
#include "store.h"
#include "routes/routes.h"

int bnd_change_begin(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot **ret_base)
{
	struct bnd_layer *l = req->layer;
	struct bnd_snapshot *base;
	char etag[BND_ETAG_MAX];
	int rc;

	pthread_mutex_lock(&l->write_lock);
	/* A change queued after a DELETE would apply to no layer. */
	if (atomic_load(&l->deleted) || l->pending_delete) {
		pthread_mutex_unlock(&l->write_lock);
		return bnd_fail(res, -ENOENT, NULL, "no layer named %s", l->name);
	}
	/* A shared store: lock the row and compute from it as stored. */
	rc = bnd_replica_lock(req->d, l);
	if (rc < 0) {
		pthread_mutex_unlock(&l->write_lock);
		return rc == -ENOENT ? bnd_fail(res, rc, NULL, "no layer named %s", l->name) :
			bnd_fail(res, rc, NULL, "the store could not lock the layer; it is unchanged");
	}
	base = bnd_layer_base(l);
	bnd_snapshot_etag(base, etag);
	rc = bnd_check_if_match(req, etag, res);
	if (rc < 0) {
		bnd_snapshot_unref(base);
		bnd_store_unlock_layer(req->d->store);
		pthread_mutex_unlock(&l->write_lock);
		return rc;
	}
	*ret_base = base;
	return 0;
}

void bnd_change_end(struct bnd_request *req, struct bnd_snapshot *base)
{
	bnd_snapshot_unref(base);
	bnd_store_unlock_layer(req->d->store);
	pthread_mutex_unlock(&req->layer->write_lock);
}

/* What a deferred answer needs: the snapshot to answer with, and how. */
struct waiting {
	int (*answer)(struct bnd_request *req, struct bnd_response *res, const struct bnd_snapshot *snap);
	struct bnd_snapshot *snap;
};

static int answer_waiting(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc)
{
	struct waiting *w = ctx;

	rc = rc < 0 ? bnd_fail_commit(res, rc, "the change") : w->answer(req, res, w->snap);
	bnd_snapshot_unref(w->snap);
	free(w);
	return rc;
}

int bnd_change_defer(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot *snap,
		int (*answer)(struct bnd_request *req, struct bnd_response *res, const struct bnd_snapshot *snap))
{
	struct waiting *w = malloc(sizeof(*w));
	int rc;

	if (!w) {
		bnd_snapshot_unref(req->change->next);
		req->change->next = NULL;
		bnd_snapshot_unref(snap);
		return bnd_fail(res, -ENOMEM, NULL, "out of memory");
	}
	*w = (struct waiting){ .answer = answer, .snap = snap };
	rc = bnd_request_defer(req, res, req->layer, answer_waiting, w);
	if (rc < 0) {
		bnd_snapshot_unref(snap);
		free(w);
	}
	return rc;
}

int bnd_change_answer(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot *snap,
		int (*answer)(struct bnd_request *req, struct bnd_response *res,
			const struct bnd_snapshot *snap))
{
	if (!bnd_layer_busy(req->layer))
		return answer(req, res, snap);
	req->change->kind = BND_CHANGE_NONE;
	req->change->next = NULL;
	atomic_fetch_add(&snap->refs, 1);
	return bnd_change_defer(req, res, snap, answer);
}

int bnd_change_queue(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot *next,
		int (*answer)(struct bnd_request *req, struct bnd_response *res,
			const struct bnd_snapshot *snap))
{
	next->version++;
	next->updated_ms = bnd_now_ms();
	req->change->kind = BND_CHANGE_UPDATE;
	req->change->next = next;
	atomic_fetch_add(&next->refs, 1);
	return bnd_change_defer(req, res, next, answer);
}

int bnd_change_apply(struct bnd_request *req, struct bnd_response *res,
		int (*change)(struct bnd_request *req, const struct bnd_snapshot *cur,
			struct bnd_snapshot *next, struct bn_error *e),
		int (*answer)(struct bnd_request *req, struct bnd_response *res,
			const struct bnd_snapshot *snap))
{
	struct bnd_snapshot *base, *next;
	struct bn_error e = { 0 };
	int rc;

	/* Before the lock: a change refused for memory has changed nothing. */
	rc = bnd_reserve_layer(req, res, bnd_layer_width(req->layer), 2);
	if (rc < 0)
		return rc;
	rc = bnd_change_begin(req, res, &base);
	if (rc < 0)
		return rc;
	rc = bnd_snapshot_copy(base, &next);
	if (rc < 0) {
		rc = bnd_fail(res, rc, NULL, "out of memory");
		goto out;
	}
	rc = change(req, base, next, &e);
	if (rc < 0) {
		bnd_snapshot_unref(next);
		rc = bnd_fail_bn(res, rc, &e);
	} else if (rc > 0) {
		bnd_snapshot_unref(next);
		rc = bnd_change_answer(req, res, base, answer);
	} else {
		rc = bnd_change_queue(req, res, next, answer);
	}
out:
	bnd_change_end(req, base);
	return rc;
}
