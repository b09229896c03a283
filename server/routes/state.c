/*
 * routes/state.c: /v1/layers/{name}/state (GET, PUT) and /reset.
 */
#include <stdlib.h>
#include <string.h>

#include "bn/safetensors.h"
#include "codec.h"
#include "errors.h"
#include "import.h"
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

/* One safetensors entry into the state's field it names; -EINVAL for a key the layer lacks. */
static int load_entry(const struct bn_st_entry *t, const struct bn_config *cfg, struct bn_state *st,
		float *tmp, struct bn_error *e)
{
	const char *k = t->name;
	float *dst = !strcmp(k, "weight") ? st->weight : !strcmp(k, "bias") ? st->bias :
		!strcmp(k, "running_mean") ? st->running_mean : !strcmp(k, "running_var") ? st->running_var : NULL;
	int64_t n;
	int rc;

	if (cfg->track_running_stats && !strcmp(k, "num_batches_tracked")) {
		rc = bn_st_int64(t, &n, e);
		if (rc == 0 && (n < 0 || n > BN_MAX_BATCHES_TRACKED)) {
			bn_error_set(e, BND_E_INVALID_STATE, "num_batches_tracked must be from 0 to 2^53");
			rc = -EINVAL;
		}
		if (rc == 0)
			st->num_batches_tracked = n;
		return rc;
	}
	if (!dst) {
		bn_error_set(e, BN_E_UNKNOWN_KEY, "this layer has no \"%.64s\"", k);
		return -EINVAL;
	}
	if (t->rank != 1 || t->shape[0] != cfg->num_features) {
		bn_error_set(e, BN_E_SHAPE_MISMATCH, "%s: expected shape [%zu] (num_features)", k, cfg->num_features);
		return -EINVAL;
	}
	rc = bn_st_floats(t, tmp, e);
	for (size_t i = 0; rc == 0 && dst == st->running_var && i < cfg->num_features; i++) {
		if (tmp[i] < 0) {
			bn_error_set(e, BND_E_INVALID_STATE, "running_var[%zu] must be >= 0, got %g", i, (double)tmp[i]);
			rc = -EINVAL;
		}
	}
	if (rc == 0)
		memcpy(dst, tmp, cfg->num_features * sizeof(*tmp));
	return rc;
}

/* A safetensors body with the state_dict's own keys (weight, running_mean...). */
static int load_safetensors(struct bnd_request *req, struct bnd_snapshot *next, struct bn_error *e)
{
	struct bn_safetensors st;
	struct bn_state copy;
	float *tmp;
	int rc;

	rc = bn_safetensors_parse(req->body, req->body_len, BND_IMPORT_HEADER_MAX, 16, &st, e);
	if (rc < 0)
		return rc;
	tmp = malloc(next->cfg.num_features * sizeof(*tmp));
	if (!tmp || bn_state_copy(&copy, &next->state) < 0) {
		free(tmp);
		bn_safetensors_finish(&st);
		bn_error_set(e, BN_E_NO_MEMORY, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < st.count && rc == 0; i++)
		rc = load_entry(&st.entries[i], &next->cfg, &copy, tmp, e);
	free(tmp);
	bn_safetensors_finish(&st);
	if (rc < 0) {
		bn_state_finish(&copy);
		return rc;
	}
	bn_state_finish(&next->state);
	next->state = copy;
	return 0;
}

static int load(struct bnd_request *req, const struct bnd_snapshot *cur,
		struct bnd_snapshot *next, struct bn_error *e)
{
	(void)cur;
	if (req->body_binary)
		return load_safetensors(req, next, e);
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
