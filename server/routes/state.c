/*
 * routes/state.c: /v1/layers/{name}/state (GET, PUT) and /reset.
 */
#include "codec.h"
#include "errors.h"
#include "routes/routes.h"

static int answer_state(struct bnd_request *req, struct bnd_response *res,
		const struct bnd_snapshot *snap)
{
	(void)req;
	bnd_json(res, 200);
	bnd_state_write(&res->body, &snap->cfg, &snap->state);
	bnd_snapshot_etag(snap, res->etag);
	return 0;
}

int bnd_state_get(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *snap = bnd_layer_snapshot(req->layer);
	int rc = bnd_reserve_layer(req, res, snap->cfg.num_features, 0);

	if (rc == 0)
		answer_state(req, res, snap);
	bnd_snapshot_unref(snap);
	return rc;
}

static int load(struct bnd_request *req, const struct bnd_snapshot *cur,
		struct bnd_snapshot *next, struct bn_error *e)
{
	(void)cur;
	return bnd_state_parse(req->body, req->body_len, &next->cfg, &next->state, e);
}

static int reset(struct bnd_request *req, const struct bnd_snapshot *cur,
		struct bnd_snapshot *next, struct bn_error *e)
{
	(void)req;
	(void)cur;
	(void)e;
	/* As PyTorch's reset_running_stats(), a no-op for a layer that does not track them. */
	if (next->cfg.track_running_stats)
		bn_state_reset_running_stats(&next->state);
	return 0;
}

int bnd_state_put(struct bnd_request *req, struct bnd_response *res)
{
	return bnd_change_apply(req, res, load, answer_state);
}

int bnd_state_reset(struct bnd_request *req, struct bnd_response *res)
{
	return bnd_change_apply(req, res, reset, answer_state);
}
