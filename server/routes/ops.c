/*
 * routes/ops.c: the other operations on a layer: a train step from
 * per-worker statistics (SyncBatchNorm; POST /train with {"stats": [...]}),
 * POST /backward and GET /folded.
 *
 * The stats step is a train step like any other: the body is decoded
 * before the lock, the new state is computed on a copy under the layer's
 * write lock, committed with its history row in one transaction, and only
 * then published. Backward and folded read a snapshot and change nothing.
 *
 * Memory is reserved from the budget (budget.h) before it is allocated:
 * reading the body by a bound from its length (the body is dropped once
 * read), the answer and the scratch by bounds from the shapes.
 */
#include <stdlib.h>

#include "bn/backward.h"
#include "bn/json.h"
#include "budget.h"
#include "codec_ops.h"
#include "errors.h"
#include "routes/routes.h"

/* Compute, commit and publish the step; the write lock is held. */
static int stats_locked(struct bnd_request *req, struct bnd_response *res, const struct bnd_workers *w,
		struct bnd_snapshot *cur, struct bn_sync_result *out, struct bnd_snapshot **ret_next)
{
	struct bnd_snapshot *next;
	struct bnd_history_entry h;
	struct bn_error e = { 0 };
	int rc;

	if (bnd_snapshot_copy(cur, &next) < 0)
		return bnd_fail(res, -ENOMEM, NULL, "out of memory");
	rc = bn_sync_train(&next->cfg, &next->state, w->w, w->n, out, &e);
	if (rc < 0) {
		bnd_snapshot_unref(next);
		return bnd_fail_bn(res, rc, &e);
	}
	next->step++;
	next->version++;
	next->updated_ms = bnd_now_ms();
	h = (struct bnd_history_entry){
		.step = next->step, .at_ms = next->updated_ms, .count = out->count,
		.num_batches_tracked = next->state.num_batches_tracked, .num_features = next->cfg.num_features,
		.batch_mean = out->batch_mean, .batch_var = out->batch_var,
		.running_mean = next->state.running_mean, .running_var = next->state.running_var,
	};
	rc = bnd_store_train(req->d->store, next, &h, req->d->opt.history_limit,
		req->d->opt.history_bytes);
	if (rc < 0) {
		bnd_snapshot_unref(next);
		return bnd_fail(res, rc, NULL, "the store could not commit the train step; the layer is unchanged");
	}
	atomic_fetch_add(&next->refs, 1);
	bnd_layer_publish(req->layer, next);
	atomic_fetch_add(&req->layer->train_steps, 1);
	*ret_next = next;
	return 0;
}

static void stats_answer(struct bnd_response *res, const struct bnd_snapshot *next,
		const struct bn_sync_result *out)
{
	size_t C = next->cfg.num_features;

	bnd_json(res, 200);
	bn_buf_puts(&res->body, "{\"batch_mean\": ");
	bn_json_floats_write(&res->body, out->batch_mean, C);
	bn_buf_puts(&res->body, ", \"batch_var\": ");
	bn_json_floats_write(&res->body, out->batch_var, C);
	bn_buf_puts(&res->body, ", \"invstd\": ");
	bn_json_floats_write(&res->body, out->invstd, C);
	bn_buf_printf(&res->body, ", \"count\": %lld", (long long)out->count);
	if (next->cfg.track_running_stats) {
		bn_buf_printf(&res->body, ", \"num_batches_tracked\": %lld, \"running_mean\": ",
			(long long)next->state.num_batches_tracked);
		bn_json_floats_write(&res->body, next->state.running_mean, C);
		bn_buf_puts(&res->body, ", \"running_var\": ");
		bn_json_floats_write(&res->body, next->state.running_var, C);
	}
	bn_buf_puts(&res->body, "}");
	bnd_snapshot_etag(next, res->etag);
}

int bnd_ops_train_stats(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *cur = bnd_layer_snapshot(req->layer), *next = NULL;
	size_t C = cur->cfg.num_features;
	struct bnd_workers w = { 0 };
	struct bn_sync_result out;
	struct bn_error e = { 0 };
	size_t bound = bnd_stats_parse_max(req->body_len);
	float *f;
	int rc;

	bnd_snapshot_unref(cur);
	rc = bnd_reserve(req, res, bound, "reading the statistics");
	if (rc < 0)
		return rc;
	rc = bnd_workers_parse(req->body, req->body_len, C, &w, &e);
	bnd_request_drop_body(req);
	if (rc < 0)
		return bnd_fail_bn(res, rc, &e);
	/* What the workers' arrays took stays reserved; the tree is gone. */
	bnd_unreserve(req, bound - 2 * C * w.n * sizeof(double));
	rc = bnd_reserve(req, res, 2 * (16 * C + 256) + 24 * C, "the train step");
	if (rc == 0)
		rc = bnd_reserve_answer(req, res, 5 * bnd_floats_text_max(C) + 256);
	f = rc == 0 ? malloc(3 * C * sizeof(*f)) : NULL;
	if (!f) {
		rc = rc < 0 ? rc : bnd_fail(res, -ENOMEM, NULL, "out of memory");
		goto out;
	}
	out = (struct bn_sync_result){ 0, f, f + C, f + 2 * C };
	rc = bnd_change_begin(req, res, &cur);
	if (rc < 0)
		goto out;
	rc = stats_locked(req, res, &w, cur, &out, &next);
	bnd_change_end(req, cur);
	if (rc == 0) {
		stats_answer(res, next, &out);
		bnd_snapshot_unref(next);
	}
out:
	bnd_workers_free(&w);
	free(f);
	return rc;
}

static void backward_answer(struct bnd_response *res, const struct bn_tensor *dx, enum bn_tensor_form form,
		const float *gw, const float *gb, size_t C)
{
	bnd_json(res, 200);
	bn_buf_puts(&res->body, "{\"grad_input\": ");
	bn_json_tensor_write(&res->body, dx, form);
	if (gw) {
		bn_buf_puts(&res->body, ", \"grad_weight\": ");
		bn_json_floats_write(&res->body, gw, C);
		bn_buf_puts(&res->body, ", \"grad_bias\": ");
		bn_json_floats_write(&res->body, gb, C);
	}
	bn_buf_puts(&res->body, "}");
}

int bnd_ops_backward(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *snap;
	struct bn_tensor x = { 0 }, dy = { 0 };
	enum bn_tensor_form form;
	struct bn_error e = { 0 };
	float *g = NULL;
	bool train;
	size_t C;
	int rc;

	size_t bound = bnd_backward_parse_max(req->body_len);

	rc = bnd_reserve(req, res, bound, "reading the tensors");
	if (rc < 0)
		return rc;
	rc = bnd_backward_parse(req->body, req->body_len, req->d->opt.max_elements, &x, &dy, &form, &train, &e);
	bnd_request_drop_body(req);
	if (rc < 0)
		return bnd_fail_bn(res, rc, &e);
	bnd_unreserve(req, bound - 2 * x.count * sizeof(float));
	snap = bnd_layer_snapshot(req->layer);
	C = snap->cfg.num_features;
	rc = bnd_reserve_answer(req, res, bnd_tensor_text_max(&dy, form) + 2 * bnd_floats_text_max(C) + 128);
	if (rc < 0)
		goto out;
	if (snap->cfg.affine && !(g = malloc(2 * C * sizeof(*g)))) {
		rc = bnd_fail(res, -ENOMEM, NULL, "out of memory");
		goto out;
	}
	/* grad_input overwrites grad_output, which each channel reads before it writes. */
	rc = bn_backward(&snap->cfg, &snap->state, train, &x, &dy, &dy, g, g ? g + C : NULL, &e);
	if (rc < 0) {
		rc = bnd_fail_bn(res, rc, &e);
		goto out;
	}
	backward_answer(res, &dy, form, g, g ? g + C : NULL, C);
	bnd_snapshot_etag(snap, res->etag);
out:
	free(g);
	bnd_snapshot_unref(snap);
	bn_tensor_finish(&x);
	bn_tensor_finish(&dy);
	return rc;
}

static void folded_answer(struct bnd_response *res, const float *f, size_t C)
{
	bnd_json(res, 200);
	bn_buf_puts(&res->body, "{\"scale\": ");
	bn_json_floats_write(&res->body, f, C);
	bn_buf_puts(&res->body, ", \"shift\": ");
	bn_json_floats_write(&res->body, f + C, C);
	bn_buf_puts(&res->body, "}");
}

int bnd_ops_folded(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *snap = bnd_layer_snapshot(req->layer);
	size_t C = snap->cfg.num_features;
	struct bn_error e = { 0 };
	float *f = NULL;
	int rc;

	if (!snap->cfg.track_running_stats) {
		rc = bnd_fail(res, -EPERM, BND_E_NOT_TRACKING, "layer %s does not track running stats: "
			"its eval mode normalizes with each batch's statistics, which fold into no fixed map",
			req->layer->name);
		goto out;
	}
	rc = bnd_reserve(req, res, 8 * C, "the folded map");
	if (rc == 0)
		rc = bnd_reserve_answer(req, res, 2 * bnd_floats_text_max(C) + 64);
	if (rc < 0)
		goto out;
	f = malloc(2 * C * sizeof(*f));
	rc = f ? bn_fold(&snap->cfg, &snap->state, f, f + C, &e) : -ENOMEM;
	if (rc < 0) {
		rc = f ? bnd_fail_bn(res, rc, &e) : bnd_fail(res, rc, NULL, "out of memory");
		goto out;
	}
	folded_answer(res, f, C);
	bnd_snapshot_etag(snap, res->etag);
out:
	free(f);
	bnd_snapshot_unref(snap);
	return rc;
}
