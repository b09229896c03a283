/*
 * routes/calibration.c: /v1/layers/{name}/calibration (POST, GET, DELETE)
 * and /calibration/commit: precise BN.
 *
 * A layer's open calibration lives in the store (store_calibration.c),
 * and, while changes of it are queued for the committer, as the layer's
 * pending calibration (layer_change.h). A post decodes its body first, then
 * holds the layer's write lock while it takes the newest calibration
 * (pending, else committed), merges the batch and queues the result for
 * the committer, so concurrent posts never lose a batch; it is answered
 * once committed, so an acknowledged post survives a crash. A commit
 * queues the running stats and the calibration's close as one change, a
 * DELETE the close. GET shows what is committed.
 *
 * Memory is reserved from the budget (budget.h) before it is allocated, as
 * forward.c does: the decoded body by a bound from its length (the body is
 * dropped once decoded), then the calibration and the answer by bounds
 * from num_features, all before any lock.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bn/json.h"
#include "bn/npy.h"
#include "budget.h"
#include "codec.h"
#include "codec_ops.h"
#include "errors.h"
#include "routes/routes.h"
#include "store_calibration.h"

/* A commit body is {"variance": "..."}: read as a JSON tree, so kept small. */
#define COMMIT_BODY_MAX 4096

/* A batch to add: a tensor, or a worker's summary. */
struct batch {
	bool is_summary;
	struct bn_tensor x;
	int64_t count;
	double *mean, *var;
};

static int not_tracking(struct bnd_response *res, const char *name)
{
	return bnd_fail(res, -EPERM, BND_E_NOT_TRACKING, "layer %s does not track running stats "
		"(track_running_stats is false): it has no running stats to calibrate or fold", name);
}

/* The most bytes a calibration answer takes: four arrays of doubles, two of float32. */
static size_t answer_max(size_t C)
{
	return 4 * (C * 26 + 2) + 2 * bnd_floats_text_max(C) + 256;
}

/* The answer, and two calibrations' arrays and their store blobs. */
static int reserve_calibration(struct bnd_request *req, struct bnd_response *res, size_t C)
{
	int rc = bnd_reserve(req, res, 2 * 64 * C + 1024, "the calibration");

	return rc < 0 ? rc : bnd_reserve_answer(req, res, answer_max(C));
}

/* The decoded tensor's bytes at most: 4 a value, which takes 4 bytes of .npy or 2 of JSON. */
static size_t input_max(const struct bnd_request *req)
{
	size_t values = req->body_npy ? req->body_len / 4 : req->body_len / 2 + 1;

	if (values > req->d->opt.max_elements)
		values = req->d->opt.max_elements;
	return values * sizeof(float);
}

static int no_calibration(struct bnd_response *res, const char *name)
{
	return bnd_fail(res, -ENODATA, BND_E_NO_CALIBRATION, "layer %s has no open calibration; "
		"POST a batch to /v1/layers/%s/calibration to open one", name, name);
}

/*
 * Decode the body: .npy or {"input": T} is a tensor, {"count", "mean",
 * "var"} a summary. The body is dropped once read.
 */
static int read_batch(struct bnd_request *req, struct bnd_response *res, size_t C, struct batch *b)
{
	bool summary = !req->body_npy && (bnd_body_first_key_is(req->body, req->body_len, "count") ||
			bnd_body_first_key_is(req->body, req->body_len, "mean") ||
			bnd_body_first_key_is(req->body, req->body_len, "var"));
	size_t bound = summary ? bnd_stats_parse_max(req->body_len) + 16 * C : input_max(req);
	struct bn_error e = { 0 };
	enum bn_tensor_form form;
	int rc;

	*b = (struct batch){ 0 };
	rc = bnd_reserve(req, res, bound, summary ? "reading the summary" : "the decoded input");
	if (rc < 0)
		return rc;
	if (summary) {
		b->is_summary = true;
		b->mean = malloc(2 * C * sizeof(double));
		if (!b->mean)
			return bnd_fail(res, -ENOMEM, NULL, "out of memory");
		b->var = b->mean + C;
		rc = bnd_summary_parse(req->body, req->body_len, C, &b->count, b->mean, b->var, &e);
	} else if (req->body_npy) {
		rc = bn_npy_read(req->body, req->body_len, req->d->opt.max_elements, &b->x, &e);
	} else {
		rc = bn_json_input_parse(req->body, req->body_len, req->d->opt.max_elements, &b->x, &form, &e);
	}
	bnd_request_drop_body(req);
	if (rc < 0)
		return bnd_fail_bn(res, rc, &e);
	bnd_unreserve(req, bound - (summary ? 16 * C : b->x.count * sizeof(float)));
	return 0;
}

static void batch_finish(struct batch *b)
{
	bn_tensor_finish(&b->x);
	free(b->mean);
}

static void doubles_write(struct bn_buf *out, const double *v, size_t n)
{
	bn_buf_puts(out, "[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			bn_buf_puts(out, ", ");
		bnd_double_write(out, v[i]);
	}
	bn_buf_puts(out, "]");
}

/* The calibration as GET shows it, beside snap's running stats. */
static int answer(struct bnd_response *res, const struct bn_calibration *c,
		const struct bnd_snapshot *snap)
{
	size_t C = c->num_features;
	double *t = malloc(4 * C * sizeof(*t));

	if (!t || bn_calibration_result(c, BN_CALIBRATION_POPULATION, t, t + C, NULL) < 0 ||
			bn_calibration_result(c, BN_CALIBRATION_BATCH_AVERAGE, t + 2 * C, t + 3 * C, NULL) < 0) {
		free(t);
		return bnd_fail(res, -ENOMEM, NULL, "out of memory");
	}
	bnd_json(res, 200);
	bn_buf_printf(&res->body, "{\"count\": %lld, \"batches\": %lld, \"mean\": ",
		(long long)c->count, (long long)c->batches);
	doubles_write(&res->body, t, C);
	bn_buf_puts(&res->body, ", \"var\": ");
	doubles_write(&res->body, t + C, C);
	bn_buf_puts(&res->body, ", \"batch_average\": {\"mean\": ");
	doubles_write(&res->body, t + 2 * C, C);
	bn_buf_puts(&res->body, ", \"var\": ");
	doubles_write(&res->body, t + 3 * C, C);
	bn_buf_puts(&res->body, "}, \"running_mean\": ");
	bn_json_floats_write(&res->body, snap->state.running_mean, C);
	bn_buf_puts(&res->body, ", \"running_var\": ");
	bn_json_floats_write(&res->body, snap->state.running_var, C);
	bn_buf_puts(&res->body, "}");
	bnd_snapshot_etag(snap, res->etag);
	free(t);
	return 0;
}

/* What a calibration's answer needs once its commit is done. */
struct cal_wait {
	struct bn_calibration c;     /* POST: the calibration after the batch */
	struct bnd_snapshot *snap;   /* POST: the layer it sits beside; commit: the layer after it */
};

static void cal_wait_free(struct cal_wait *w)
{
	bn_calibration_finish(&w->c);
	bnd_snapshot_unref(w->snap);
	free(w);
}

static int post_answer(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc)
{
	struct cal_wait *w = ctx;

	(void)req;
	rc = rc < 0 ? bnd_fail_commit(res, rc, "the batch") : answer(res, &w->c, w->snap);
	cal_wait_free(w);
	return rc;
}

/*
 * Read (or open) the calibration the next change builds on, add b, and
 * queue the result for commit into w; the write lock is held.
 */
static int add_locked(struct bnd_request *req, struct bnd_response *res, const struct bnd_snapshot *base,
		struct batch *b, struct cal_wait *w)
{
	size_t C = base->cfg.num_features;
	struct bn_error e = { 0 };
	struct bnd_change *ch = req->change;
	int rc;

	rc = bnd_layer_calibration(req->d->store, req->layer, base->id, C, &w->c);
	if (rc == -ENOENT)
		rc = bn_calibration_init(&w->c, C);
	if (rc < 0)
		return bnd_fail(res, rc, NULL, "the store could not read the calibration");
	if (b->is_summary)
		rc = bn_calibration_add_summary(&w->c, b->count, b->mean, b->var, &e);
	else
		rc = bn_calibration_add_tensor(&w->c, &base->cfg, &b->x, &e);
	if (rc < 0)
		return bnd_fail_bn(res, rc, &e);
	ch->kind = BND_CHANGE_CAL_PUT;
	ch->next = NULL;
	ch->cal = &w->c;
	ch->layer_id = base->id;
	ch->at_ms = bnd_now_ms();
	return bnd_request_defer(req, res, req->layer, post_answer, w);
}

int bnd_calibration_post(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *base = bnd_layer_snapshot(req->layer);
	bool track = base->cfg.track_running_stats;
	size_t C = base->cfg.num_features;
	struct cal_wait *w = NULL;
	struct batch b;
	int rc;

	bnd_snapshot_unref(base);
	if (!track)
		return not_tracking(res, req->layer->name);
	rc = read_batch(req, res, C, &b);
	if (rc == 0)
		rc = reserve_calibration(req, res, C);
	if (rc == 0 && !(w = calloc(1, sizeof(*w))))
		rc = bnd_fail(res, -ENOMEM, NULL, "out of memory");
	if (rc == 0)
		rc = bnd_change_begin(req, res, &base);
	if (rc == 0) {
		w->snap = base;
		atomic_fetch_add(&base->refs, 1);
		rc = add_locked(req, res, base, &b, w);
		bnd_change_end(req, base);
	}
	if (rc == BND_DEFERRED)
		w = NULL; /* the answer's now */
	if (w)
		cal_wait_free(w);
	batch_finish(&b);
	return rc;
}

int bnd_calibration_get(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *snap = bnd_layer_snapshot(req->layer);
	struct bn_calibration c;
	int rc;

	if (!snap->cfg.track_running_stats) {
		rc = not_tracking(res, req->layer->name);
		goto out;
	}
	rc = reserve_calibration(req, res, snap->cfg.num_features);
	if (rc < 0)
		goto out;
	rc = bnd_store_calibration_get(req->d->store, snap->id, snap->cfg.num_features, &c, NULL);
	if (rc == -ENOENT) {
		rc = no_calibration(res, req->layer->name);
	} else if (rc < 0) {
		rc = bnd_fail(res, rc, NULL, "the store could not read the calibration");
	} else {
		rc = answer(res, &c, snap);
		bn_calibration_finish(&c);
	}
out:
	bnd_snapshot_unref(snap);
	return rc;
}

static int delete_answer(struct bnd_request *req, struct bnd_response *res, const struct bnd_snapshot *snap)
{
	(void)req;
	res->status = 204;
	bnd_snapshot_etag(snap, res->etag);
	return 0;
}

int bnd_calibration_delete(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_snapshot *base;
	struct bn_calibration c;
	int rc;

	rc = bnd_change_begin(req, res, &base);
	if (rc < 0)
		return rc;
	rc = bnd_layer_calibration(req->d->store, req->layer, base->id, base->cfg.num_features, &c);
	if (rc == -ENOENT) {
		rc = no_calibration(res, req->layer->name);
	} else if (rc < 0) {
		rc = bnd_fail(res, rc, NULL, "the store could not read the calibration; it is unchanged");
	} else {
		bn_calibration_finish(&c);
		req->change->kind = BND_CHANGE_CAL_DELETE;
		req->change->next = NULL;
		req->change->layer_id = base->id;
		atomic_fetch_add(&base->refs, 1);
		rc = bnd_change_defer(req, res, base, delete_answer);
	}
	bnd_change_end(req, base);
	return rc;
}

/* {"variance": "population" | "batch_average"}. */
static int read_variance(struct bnd_request *req, struct bnd_response *res,
		enum bn_calibration_variance *mode)
{
	json_error_t jerr;
	json_t *root;
	const char *key, *v;
	json_t *val;
	int rc = 0;

	if (req->body_len > COMMIT_BODY_MAX)
		return bnd_fail(res, -E2BIG, BN_E_TOO_LARGE, "a commit body is {\"variance\": ...}, at most "
			"%d bytes; got %zu", COMMIT_BODY_MAX, req->body_len);
	root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);

	if (!root)
		return bnd_fail(res, -EBADMSG, BN_E_INVALID_JSON, "the body is not valid JSON: %s (line %d, "
			"column %d)", jerr.text, jerr.line, jerr.column);
	if (!json_is_object(root))
		rc = bnd_fail(res, -EINVAL, BN_E_WRONG_TYPE, "the body must be {\"variance\": "
			"\"population\" | \"batch_average\"}");
	json_object_foreach(rc == 0 ? root : NULL, key, val) {
		if (strcmp(key, "variance")) {
			rc = bnd_fail(res, -EINVAL, BN_E_UNKNOWN_KEY, "unknown key \"%.64s\"; expected variance", key);
			break;
		}
	}
	v = rc == 0 ? json_string_value(json_object_get(root, "variance")) : NULL;
	if (rc == 0 && v && !strcmp(v, "population"))
		*mode = BN_CALIBRATION_POPULATION;
	else if (rc == 0 && v && !strcmp(v, "batch_average"))
		*mode = BN_CALIBRATION_BATCH_AVERAGE;
	else if (rc == 0)
		rc = bnd_fail(res, -EINVAL, json_object_get(root, "variance") ? BN_E_WRONG_TYPE : BN_E_MISSING_INPUT,
			"variance: expected \"population\" (the exact variance of every value) or "
			"\"batch_average\" (as torch.optim.swa_utils.update_bn)");
	json_decref(root);
	return rc;
}

static int commit_answer(struct bnd_request *req, struct bnd_response *res, const struct bnd_snapshot *snap)
{
	(void)req;
	bnd_json(res, 200);
	bnd_state_write(&res->body, &snap->cfg, &snap->state);
	bnd_snapshot_etag(snap, res->etag);
	return 0;
}

/*
 * Compute the calibrated running stats from the calibration and the
 * layer's newest state and queue them, with the calibration's close, for
 * commit; the write lock is held.
 */
static int commit_locked(struct bnd_request *req, struct bnd_response *res, const struct bnd_snapshot *base,
		enum bn_calibration_variance mode)
{
	struct bnd_snapshot *next;
	struct bn_calibration c;
	struct bn_error e = { 0 };
	int rc;

	if (!base->cfg.track_running_stats)
		return not_tracking(res, req->layer->name);
	rc = bnd_layer_calibration(req->d->store, req->layer, base->id, base->cfg.num_features, &c);
	if (rc == -ENOENT)
		return no_calibration(res, req->layer->name);
	if (rc < 0)
		return bnd_fail(res, rc, NULL, "the store could not read the calibration");
	rc = bnd_snapshot_copy(base, &next);
	if (rc < 0) {
		rc = bnd_fail(res, rc, NULL, "out of memory");
		goto out;
	}
	rc = bn_calibration_commit(&c, mode, &next->cfg, &next->state, &e);
	if (rc < 0) {
		bnd_snapshot_unref(next);
		rc = bnd_fail_bn(res, rc, &e);
		goto out;
	}
	next->version++;
	next->updated_ms = bnd_now_ms();
	req->change->kind = BND_CHANGE_CAL_COMMIT;
	req->change->next = next;
	req->change->layer_id = base->id;
	atomic_fetch_add(&next->refs, 1);
	rc = bnd_change_defer(req, res, next, commit_answer);
out:
	bn_calibration_finish(&c);
	return rc;
}

int bnd_calibration_commit(struct bnd_request *req, struct bnd_response *res)
{
	enum bn_calibration_variance mode;
	struct bnd_snapshot *cur;
	int rc;

	rc = read_variance(req, res, &mode);
	if (rc == 0)
		rc = bnd_reserve(req, res, 64 * bnd_layer_width(req->layer) + 1024, "the calibration");
	if (rc == 0)
		rc = bnd_reserve_layer(req, res, bnd_layer_width(req->layer), 2);
	if (rc < 0)
		return rc;
	rc = bnd_change_begin(req, res, &cur);
	if (rc < 0)
		return rc;
	rc = commit_locked(req, res, cur, mode);
	bnd_change_end(req, cur);
	return rc;
}
