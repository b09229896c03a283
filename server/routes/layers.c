/*
 * routes/layers.c: /v1/layers and /v1/layers/{name}: create, list,
 * inspect, PATCH, DELETE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/json.h"
#include "budget.h"
#include "codec.h"
#include "errors.h"
#include "replica.h"
#include "routes/routes.h"

size_t bnd_layer_width(struct bnd_layer *l)
{
	struct bnd_snapshot *snap = bnd_layer_snapshot(l);
	size_t n = snap->cfg.num_features;

	bnd_snapshot_unref(snap);
	return n;
}

int bnd_reserve_layer(struct bnd_request *req, struct bnd_response *res, size_t num_features,
		size_t copies)
{
	/* A state's four arrays of float32, with room for the struct around them. */
	int rc = bnd_reserve(req, res, copies * (16 * num_features + 256), "a copy of the layer");

	return rc < 0 ? rc : bnd_reserve_answer(req, res, bnd_layer_text_max(num_features));
}

/* Answer with the layer as GET shows it, and its ETag. */
static int answer_layer(struct bnd_response *res, unsigned status, const char *name,
		const struct bnd_snapshot *snap)
{
	bnd_json(res, status);
	bnd_layer_write(&res->body, name, snap);
	bnd_snapshot_etag(snap, res->etag);
	return 0;
}

int bnd_layers_list(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_layer **layers;
	size_t n;

	int rc;

	/* A shared store: list the table, with layers other daemons created or deleted. */
	rc = bnd_replica_sync_all(req->d);
	if (rc < 0)
		return bnd_fail(res, rc, NULL, "the store could not be read");
	if (bnd_registry_list(&req->d->registry, &layers, &n) < 0)
		return bnd_fail(res, -ENOMEM, NULL, "out of memory listing layers");
	/* A name, a config, a count and a time each. */
	rc = bnd_reserve_answer(req, res, n * (2 * BND_NAME_MAX + 512) + 64);
	if (rc < 0) {
		for (size_t i = 0; i < n; i++)
			bnd_layer_unref(layers[i]);
		free(layers);
		return rc;
	}
	bnd_json(res, 200);
	bn_buf_puts(&res->body, "{\"layers\": [");
	for (size_t i = 0; i < n; i++) {
		struct bnd_snapshot *snap = bnd_layer_snapshot(layers[i]);

		bn_buf_puts(&res->body, i ? ", {\"name\": " : "{\"name\": ");
		bn_json_string_write(&res->body, layers[i]->name);
		bn_buf_puts(&res->body, ", \"config\": ");
		bnd_config_write(&res->body, &snap->cfg);
		if (snap->cfg.track_running_stats)
			bn_buf_printf(&res->body, ", \"num_batches_tracked\": %lld",
				(long long)snap->state.num_batches_tracked);
		bn_buf_puts(&res->body, ", \"updated_at\": ");
		bnd_time_write(&res->body, snap->updated_ms);
		bn_buf_puts(&res->body, "}");
		bnd_snapshot_unref(snap);
		bnd_layer_unref(layers[i]);
	}
	free(layers);
	bn_buf_puts(&res->body, "]}");
	return 0;
}

static int answer_same(struct bnd_request *req, struct bnd_response *res, const struct bnd_snapshot *snap)
{
	return answer_layer(res, 200, req->layer->name, snap);
}

static int answer_conflict(struct bnd_request *req, struct bnd_response *res, const struct bnd_snapshot *snap)
{
	bnd_fail(res, -EEXIST, BND_E_CONFLICT, "layer %s exists with another config; "
		"DELETE it first or use PATCH for eps and momentum", req->layer->name);
	bnd_snapshot_etag(snap, res->etag);
	return -EEXIST;
}

/*
 * PUT of a name that exists: 200 for the same config, 409 for another,
 * judged against the state the next change would apply to; answered once
 * what is queued for the layer (its creation, say) is committed.
 */
static int put_existing(struct bnd_request *req, struct bnd_response *res, struct bnd_layer *l,
		const struct bn_config *cfg)
{
	struct bnd_snapshot *base;
	char etag[BND_ETAG_MAX];
	int rc;

	pthread_mutex_lock(&l->write_lock);
	if (atomic_load(&l->deleted) || l->pending_delete) {
		rc = bnd_fail(res, -EEXIST, BND_E_CONFLICT, "layer %s is being deleted; PUT it again once "
			"the DELETE is answered", l->name);
		goto out;
	}
	if (atomic_load(&l->creating) && bnd_header(req, "If-Match")) {
		rc = bnd_fail(res, -ESTALE, NULL, "If-Match was given but layer %s is still being created",
			l->name);
		goto out;
	}
	base = bnd_layer_base(l);
	if (!atomic_load(&l->creating)) {
		bnd_snapshot_etag(base, etag);
		rc = bnd_check_if_match(req, etag, res);
		if (rc < 0) {
			snprintf(res->etag, sizeof(res->etag), "%s", etag);
			bnd_snapshot_unref(base);
			goto out;
		}
	}
	rc = bnd_change_answer(req, res, base, bnd_config_equal(cfg, &base->cfg) ? answer_same : answer_conflict);
	bnd_snapshot_unref(base);
out:
	pthread_mutex_unlock(&l->write_lock);
	return rc;
}

static int answer_created(struct bnd_request *req, struct bnd_response *res, const struct bnd_snapshot *snap)
{
	snprintf(res->location, sizeof(res->location), "/v1/layers/%s", req->layer->name);
	return answer_layer(res, 201, req->layer->name, snap);
}

/*
 * Create the layer; called with the registry's create_lock held. It is in
 * the registry at once, so a second PUT of the name finds it, but hidden
 * from everything else until its insert is committed.
 */
static int put_new(struct bnd_request *req, struct bnd_response *res, const struct bn_config *cfg)
{
	struct bnd_daemon *d = req->d;
	struct bnd_snapshot *snap;
	struct bnd_layer *l = NULL;
	int rc;

	if (bnd_header(req, "If-Match"))
		return bnd_fail(res, -ESTALE, NULL, "If-Match was given but there is no layer named %s", req->name);
	if (bnd_registry_count(&d->registry) >= d->opt.max_layers)
		return bnd_fail(res, -EDQUOT, BND_E_TOO_MANY_LAYERS, "there are already %zu layers, the limit "
			"(--max-layers)", d->opt.max_layers);
	if (bnd_snapshot_create(cfg, &snap) < 0)
		return bnd_fail(res, -ENOMEM, NULL, "out of memory creating the layer");
	snap->created_ms = snap->updated_ms = bnd_now_ms();
	atomic_fetch_add(&snap->refs, 1);
	rc = bnd_layer_create(req->name, snap, &l);
	if (rc == 0) {
		atomic_store(&l->creating, true);
		rc = bnd_registry_add(&d->registry, l);
	}
	if (rc < 0) {
		bnd_layer_unref(l);
		bnd_snapshot_unref(snap);
		return bnd_fail(res, rc, NULL, "out of memory creating the layer");
	}
	req->layer = l;
	pthread_mutex_lock(&l->write_lock);
	req->change->kind = BND_CHANGE_INSERT;
	req->change->next = snap;
	atomic_fetch_add(&snap->refs, 1);
	rc = bnd_change_defer(req, res, snap, answer_created);
	pthread_mutex_unlock(&l->write_lock);
	/* Not queued: the layer never was. */
	if (rc < 0)
		bnd_registry_remove(&d->registry, l);
	return rc;
}

int bnd_layers_put(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_registry *reg = &req->d->registry;
	struct bn_config cfg;
	struct bn_error e;
	struct bnd_layer *l;
	int rc;

	rc = bnd_config_parse(req->body, req->body_len, req->d->opt.max_features, &cfg, &e);
	if (rc < 0)
		return bnd_fail_bn(res, rc, &e);
	rc = bnd_reserve_layer(req, res, cfg.num_features, 1);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&reg->create_lock);
	rc = bnd_replica_layer(req->d, req->name, &l);
	if (rc < 0 && rc != -ENOENT) {
		pthread_mutex_unlock(&reg->create_lock);
		return bnd_fail(res, rc, NULL, "the store could not be read; nothing was created");
	}
	if (rc == 0) {
		req->layer = l;
		rc = put_existing(req, res, l, &cfg);
	} else {
		rc = put_new(req, res, &cfg);
	}
	pthread_mutex_unlock(&reg->create_lock);
	return rc;
}

int bnd_layers_get(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *snap = bnd_layer_snapshot(req->layer);
	int rc = bnd_reserve_layer(req, res, snap->cfg.num_features, 0);

	if (rc == 0)
		answer_layer(res, 200, req->layer->name, snap);
	bnd_snapshot_unref(snap);
	return rc;
}

static int patch(struct bnd_request *req, const struct bnd_snapshot *cur,
		struct bnd_snapshot *next, struct bn_error *e)
{
	int rc = bnd_config_patch(req->body, req->body_len, &next->cfg, e);

	if (rc < 0)
		return rc;
	/* The config it already has changes nothing, and keeps the ETag. */
	return bnd_config_equal(&next->cfg, &cur->cfg) ? 1 : 0;
}

static int answer_patched(struct bnd_request *req, struct bnd_response *res,
		const struct bnd_snapshot *snap)
{
	return answer_layer(res, 200, req->layer->name, snap);
}

int bnd_layers_patch(struct bnd_request *req, struct bnd_response *res)
{
	return bnd_change_apply(req, res, patch, answer_patched);
}

static int answer_deleted(struct bnd_request *req, struct bnd_response *res, const struct bnd_snapshot *snap)
{
	(void)req;
	(void)snap;
	res->status = 204;
	return 0;
}

int bnd_layers_delete(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *base;
	int rc;

	rc = bnd_change_begin(req, res, &base);
	if (rc < 0)
		return rc;
	req->change->kind = BND_CHANGE_DELETE;
	req->change->next = NULL;
	atomic_fetch_add(&base->refs, 1);
	rc = bnd_change_defer(req, res, base, answer_deleted);
	bnd_change_end(req, base);
	return rc;
}
