/*
 * routes/ops.c: the other operations on a layer: a train step from
 * per-worker statistics (SyncBatchNorm; POST /train with {"stats": [...]}),
 * POST /backward and GET /folded.
 *
 * The stats step is a train step like any other: the body is decoded
 * before the lock, the new state is computed on a copy of the layer's
 * newest (pending or committed) state under its write lock, and queued
 * with its history row for the committer by forward.c's bnd_train_queue;
 * it is published and answered once committed. Backward and folded read a snapshot and change nothing.
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

/* What a stats step's answer needs once its commit is done. */
struct stats_wait {
	struct bn_sync_result out;   /* its arrays are one allocation, out.batch_mean */
	struct bnd_snapshot *next;   /* the layer after the step */
};

static void stats_wait_free(struct stats_wait *sw)
{
	free(sw->out.batch_mean);
	bnd_snapshot_unref(sw->next);
	free(sw);
}

static int stats_answer(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc)
{
	struct stats_wait *sw = ctx;
	const struct bnd_snapshot *next = sw->next;
	const struct bn_sync_result *out = &sw->out;
	size_t C = next->cfg.num_features;

	(void)req;
	if (rc < 0) {
		rc = bnd_fail_commit(res, rc, "the train step");
		goto out;
	}
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
out:
	stats_wait_free(sw);
	return rc;
}

/* Compute the step from base and queue it as any train step is (forward.c); the write lock is held. */
static int stats_locked(struct bnd_request *req, struct bnd_response *res, const struct bnd_workers *w,
		const struct bnd_snapshot *base, struct stats_wait *sw)
{
	struct bnd_history_entry h;
	struct bn_error e = { 0 };
	int rc;

	if (bnd_snapshot_copy(base, &sw->next) < 0)
		return bnd_fail(res, -ENOMEM, NULL, "out of memory");
	rc = bn_sync_train(&sw->next->cfg, &sw->next->state, w->w, w->n, &sw->out, &e);
	if (rc < 0)
		return bnd_fail_bn(res, rc, &e);
	h = (struct bnd_history_entry){
		.count = sw->out.count, .batch_mean = sw->out.batch_mean, .batch_var = sw->out.batch_var,
	};
	return bnd_train_queue(req, res, sw->next, &h, stats_answer, sw);
}

int bnd_ops_train_stats(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *base;
	size_t C = bnd_layer_width(req->layer);
	struct bnd_workers w = { 0 };
	struct stats_wait *sw = NULL;
	struct bn_error e = { 0 };
	size_t bound = bnd_stats_parse_max(req->body_len);
	float *f = NULL;
	int rc;

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
	if (rc == 0 && (!(sw = calloc(1, sizeof(*sw))) || !(f = malloc(3 * C * sizeof(*f)))))
		rc = bnd_fail(res, -ENOMEM, NULL, "out of memory");
	if (rc < 0)
		goto out;
	sw->out = (struct bn_sync_result){ 0, f, f + C, f + 2 * C };
	f = NULL;
	rc = bnd_change_begin(req, res, &base);
	if (rc < 0)
		goto out;
	rc = stats_locked(req, res, &w, base, sw);
	bnd_change_end(req, base);
	if (rc == BND_DEFERRED)
		sw = NULL; /* the answer's now */
out:
	if (sw)
		stats_wait_free(sw);
	free(f);
	bnd_workers_free(&w);
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
