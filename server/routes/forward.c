/*
 * routes/forward.c: POST /v1/layers/{name}/train and /eval.
 *
 * The body is decoded before any lock is taken. A train step then holds the
 * layer's write lock while it computes on a copy of the state the step
 * applies to (the newest pending one, else the committed one) and queues
 * the new state and its history row for the committer, which writes them
 * in one transaction with whatever else is queued and publishes the copy
 * only once that commit succeeded; so a failed step changes nothing. The
 * answer is written once the commit is done.
 *
 * Memory is reserved from the budget (budget.h) before it is allocated:
 * the decoded input by a bound from the body's length (then trimmed to
 * what it took, and the body dropped), and the answer by a bound from the
 * input's shape, both before any lock, so a refusal changes nothing.
 */
#include <stdlib.h>

#include "bn/json.h"
#include "bn/npy.h"
#include "bn/npz.h"
#include "budget.h"
#include "codec.h"
#include "codec_ops.h"
#include "errors.h"
#include "routes/routes.h"

/*
 * The most bytes the decoded input can take: 4 per value, and a value
 * takes at least 2 bytes of a .npy body (float16, the narrowest dtype
 * bn_npy_read takes), 2 of a JSON one ("0,").
 */
static size_t input_max(const struct bnd_request *req)
{
	size_t values = req->body_npy ? req->body_len / 2 : req->body_len / 2 + 1;

	if (values > req->d->opt.max_elements)
		values = req->d->opt.max_elements;
	return values * sizeof(float);
}

/* Decode the body, JSON or .npy, into a new tensor; the body is dropped. */
static int read_input(struct bnd_request *req, struct bnd_response *res, struct bn_tensor *x,
		enum bn_tensor_form *form)
{
	size_t max = req->d->opt.max_elements, bound = input_max(req);
	struct bn_error e = { 0 };
	int rc;

	rc = bnd_reserve(req, res, bound, "the decoded input");
	if (rc < 0)
		return rc;
	if (req->body_npy) {
		*form = BN_FORM_SHAPED;
		rc = bn_npy_read(req->body, req->body_len, max, x, &e);
	} else {
		rc = bn_json_input_parse(req->body, req->body_len, max, x, form, &e);
	}
	bnd_request_drop_body(req);
	if (rc < 0)
		return bnd_fail_bn(res, rc, &e);
	bnd_unreserve(req, bound - x->count * sizeof(float));
	return 0;
}

/*
 * Reserve the answer for output y, plus extra bytes of JSON beside it, and
 * scratch bytes for the step (snapshot copies, statistics).
 */
static int reserve_answer(struct bnd_request *req, struct bnd_response *res, const struct bn_tensor *y,
		enum bn_tensor_form form, size_t extra, size_t scratch)
{
	size_t text = req->accept_npy ? y->count * sizeof(float) + 512 :
		bnd_tensor_text_max(y, form) + extra + 64;
	int rc;

	/* An .npz is the output's .npy, built apart first, then copied into the archive with the rest. */
	if (req->accept_npz) {
		text = y->count * sizeof(float) + extra + 2048;
		scratch += y->count * sizeof(float) + 1024;
	}
	rc = bnd_reserve(req, res, scratch, "the forward pass");

	return rc < 0 ? rc : bnd_reserve_answer(req, res, text);
}

/* The output alone, as .npy or as {"output": T (and the caller appends more)}. */
static void write_output(struct bnd_request *req, struct bnd_response *res, const struct bn_tensor *y,
		enum bn_tensor_form form)
{
	if (req->accept_npy) {
		res->status = 200;
		res->content_type = "application/x-npy";
		bn_npy_write(&res->body, y);
		return;
	}
	bnd_json(res, 200);
	bn_buf_puts(&res->body, "{\"output\": ");
	bn_json_tensor_write(&res->body, y, form);
}

/*
 * The answer as an .npz: output and, for a train step (stats non-NULL),
 * batch_mean, batch_var and, when tracked, the running stats and
 * num_batches_tracked: everything the JSON answer has.
 */
static void write_npz(struct bnd_response *res, const struct bn_tensor *y, float *stats,
		const struct bnd_snapshot *snap)
{
	static const char *const keys[] = { "output", "batch_mean", "batch_var", "running_mean",
		"running_var", "num_batches_tracked" };
	size_t c = snap->cfg.num_features, n = 1;
	float *arrays[] = { NULL, stats, stats ? stats + c : NULL, snap->state.running_mean,
		snap->state.running_var };
	struct bn_npz_member m[6];
	struct bn_buf npy[6];
	int rc = 0;

	if (stats)
		n = snap->cfg.track_running_stats ? 6 : 3;
	for (size_t i = 0; i < n; i++) {
		struct bn_tensor t = { .rank = 1, .shape = { c }, .count = c, .data = i < 5 ? arrays[i] : NULL };

		bn_buf_init(&npy[i], 0);
		if (i == 0)
			rc |= bn_npy_write(&npy[i], y);
		else if (i < 5)
			rc |= bn_npy_write(&npy[i], &t);
		else
			rc |= bn_npy_write_i64(&npy[i], snap->state.num_batches_tracked);
		m[i] = (struct bn_npz_member){ keys[i], npy[i].data, npy[i].len };
	}
	res->status = 200;
	res->content_type = "application/x-npz";
	if (rc == 0)
		rc = bn_npz_write(&res->body, m, n);
	if (rc < 0 && !res->body.err)
		res->body.err = rc;
	for (size_t i = 0; i < n; i++)
		bn_buf_finish(&npy[i]);
}

/* What a train step's answer needs once its commit is done. */
struct train_wait {
	struct bn_tensor x;          /* the output, computed in place */
	enum bn_tensor_form form;
	float *stats;                /* batch_mean then batch_var, num_features each */
	struct bnd_snapshot *next;   /* the layer after the step */
};

static void train_wait_free(struct train_wait *w)
{
	bn_tensor_finish(&w->x);
	free(w->stats);
	bnd_snapshot_unref(w->next);
	free(w);
}

static int train_answer(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc)
{
	struct train_wait *w = ctx;
	const struct bnd_snapshot *next = w->next;
	size_t c = next->cfg.num_features;

	if (rc < 0) {
		rc = bnd_fail_commit(res, rc, "the train step");
		goto out;
	}
	bnd_snapshot_etag(next, res->etag);
	if (req->accept_npz) {
		write_npz(res, &w->x, w->stats, w->next);
		goto out;
	}
	write_output(req, res, &w->x, w->form);
	if (!req->accept_npy) {
		bn_buf_puts(&res->body, ", \"batch_mean\": ");
		bn_json_floats_write(&res->body, w->stats, c);
		bn_buf_puts(&res->body, ", \"batch_var\": ");
		bn_json_floats_write(&res->body, w->stats + c, c);
		if (next->cfg.track_running_stats) {
			bn_buf_printf(&res->body, ", \"num_batches_tracked\": %lld, \"running_mean\": ",
				(long long)next->state.num_batches_tracked);
			bn_json_floats_write(&res->body, next->state.running_mean, c);
			bn_buf_puts(&res->body, ", \"running_var\": ");
			bn_json_floats_write(&res->body, next->state.running_var, c);
		}
		bn_buf_puts(&res->body, "}");
	}
out:
	train_wait_free(w);
	return rc;
}

int bnd_train_queue(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot *next,
		const struct bnd_history_entry *h,
		int (*answer)(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc), void *ctx)
{
	struct bnd_change *ch = req->change;

	next->step++;
	next->version++;
	next->updated_ms = bnd_now_ms();
	ch->kind = BND_CHANGE_TRAIN;
	ch->h = *h;
	ch->h.step = next->step;
	ch->h.at_ms = next->updated_ms;
	ch->h.num_features = next->cfg.num_features;
	ch->h.num_batches_tracked = next->state.num_batches_tracked;
	ch->h.running_mean = next->state.running_mean;
	ch->h.running_var = next->state.running_var;
	ch->keep = req->d->opt.history_limit;
	ch->keep_bytes = req->d->opt.history_bytes;
	ch->next = next;
	atomic_fetch_add(&next->refs, 1);
	return bnd_request_defer(req, res, req->layer, answer, ctx);
}

/*
 * Compute one train step from base into w and queue it for commit; the
 * write lock is held. The history entry points into w, which lives until
 * the answer.
 */
static int train_locked(struct bnd_request *req, struct bnd_response *res, struct train_wait *w,
		const struct bnd_snapshot *base)
{
	size_t c = base->cfg.num_features;
	struct bn_error e = { 0 };
	struct bnd_history_entry h;
	int rc;

	if (bnd_snapshot_copy(base, &w->next) < 0)
		return bnd_fail(res, -ENOMEM, NULL, "out of memory");
	rc = bn_forward_train(&w->next->cfg, &w->next->state, &w->x, &w->x, w->stats, w->stats + c, &e);
	if (rc < 0)
		return bnd_fail_bn(res, rc, &e);
	h = (struct bnd_history_entry){
		.count = (int64_t)(w->x.count / c), .batch_mean = w->stats, .batch_var = w->stats + c,
	};
	return bnd_train_queue(req, res, w->next, &h, train_answer, w);
}

int bnd_forward_train(struct bnd_request *req, struct bnd_response *res)
{
	struct train_wait *w;
	struct bnd_snapshot *base;
	size_t c;
	int rc;

	/* {"stats": [...]}: SyncBatchNorm's step from per-worker statistics (routes/ops.c). */
	if (!req->body_npy && bnd_body_first_key_is(req->body, req->body_len, "stats"))
		return bnd_ops_train_stats(req, res);
	w = calloc(1, sizeof(*w));
	if (!w)
		return bnd_fail(res, -ENOMEM, NULL, "out of memory");
	rc = read_input(req, res, &w->x, &w->form);
	if (rc < 0)
		goto fail;
	/* The statistics' text, and a copy of the state, the statistics and the math's per-channel sums. */
	c = bnd_layer_width(req->layer);
	rc = reserve_answer(req, res, &w->x, w->form, 4 * bnd_floats_text_max(c) + 128, 64 * c);
	if (rc < 0)
		goto fail;
	w->stats = malloc(2 * c * sizeof(*w->stats));
	if (!w->stats) {
		rc = bnd_fail(res, -ENOMEM, NULL, "out of memory");
		goto fail;
	}
	rc = bnd_change_begin(req, res, &base);
	if (rc < 0)
		goto fail;
	rc = train_locked(req, res, w, base);
	bnd_change_end(req, base);
	if (rc == BND_DEFERRED)
		return rc; /* w is the answer's now */
fail:
	train_wait_free(w);
	return rc;
}

int bnd_forward_eval(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *snap;
	enum bn_tensor_form form;
	struct bn_tensor x;
	struct bn_error e = { 0 };
	int rc;

	rc = read_input(req, res, &x, &form);
	if (rc < 0)
		return rc;
	snap = bnd_layer_snapshot(req->layer);
	rc = reserve_answer(req, res, &x, form, 0, 16 * snap->cfg.num_features);
	if (rc < 0)
		goto out;
	rc = bn_forward_eval(&snap->cfg, &snap->state, &x, &x, &e);
	if (rc < 0) {
		rc = bnd_fail_bn(res, rc, &e);
	} else if (req->accept_npz) {
		write_npz(res, &x, NULL, snap);
		bnd_snapshot_etag(snap, res->etag);
	} else {
		write_output(req, res, &x, form);
		if (!req->accept_npy)
			bn_buf_puts(&res->body, "}");
		bnd_snapshot_etag(snap, res->etag);
	}
out:
	bnd_snapshot_unref(snap);
	bn_tensor_finish(&x);
	return rc;
}
