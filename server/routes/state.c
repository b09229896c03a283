/*
 * routes/state.c: /v1/layers/{name}/state (GET, PUT) and /reset.
 */
#include "codec.h"
#include "errors.h"
#include "routes/routes.h"

static int answer_state(struct bnd_response *res, const struct bnd_snapshot *snap)
{
	bnd_json(res, 200);
	bnd_state_write(&res->body, &snap->cfg, &snap->state);
	bnd_snapshot_etag(snap, res->etag);
	return 0;
}

int bnd_state_get(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *snap = bnd_layer_snapshot(req->layer);

	answer_state(res, snap);
	bnd_snapshot_unref(snap);
	return 0;
}

/* Change a copy of the state with change(), then commit it; the write lock is held. */
static int change_state(struct bnd_request *req, struct bnd_response *res,
		int (*change)(struct bnd_request *req, struct bnd_snapshot *next, struct bn_error *e))
{
	struct bnd_snapshot *cur, *next;
	struct bn_error e = { 0 };
	int rc;

	rc = bnd_change_begin(req, res, &cur);
	if (rc < 0)
		return rc;
	rc = bnd_snapshot_copy(cur, &next);
	if (rc < 0) {
		rc = bnd_fail(res, rc, NULL, "out of memory");
		goto out;
	}
	rc = change(req, next, &e);
	if (rc < 0) {
		bnd_snapshot_unref(next);
		rc = bnd_fail_bn(res, rc, &e);
		goto out;
	}
	rc = bnd_change_commit(req, res, next);
	if (rc == 0)
		answer_state(res, next);
out:
	bnd_change_end(req, cur);
	return rc;
}

static int load(struct bnd_request *req, struct bnd_snapshot *next, struct bn_error *e)
{
	return bnd_state_parse(req->body, req->body_len, &next->cfg, &next->state, e);
}

static int reset(struct bnd_request *req, struct bnd_snapshot *next, struct bn_error *e)
{
	(void)req;
	(void)e;
	/* As PyTorch's reset_running_stats(), a no-op for a layer that does not track them. */
	if (next->cfg.track_running_stats)
		bn_state_reset_running_stats(&next->state);
	return 0;
}

int bnd_state_put(struct bnd_request *req, struct bnd_response *res)
{
	return change_state(req, res, load);
}

int bnd_state_reset(struct bnd_request *req, struct bnd_response *res)
{
	return change_state(req, res, reset);
}
