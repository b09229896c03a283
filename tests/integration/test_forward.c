/*
 * test_forward.c: train and eval over HTTP.
 *
 * API.md's worked example (numbers from PyTorch via golden.py), both JSON tensor forms
 * with the output in the input's form, ranks 2 to 5, eval against
 * libbatchnorm run on the state the server reports, and .npy in and out.
 */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/batchnorm.h"
#include "worked_example.h"

static struct it_daemon d;

static bool expect(const char *method, const char *path, const char *const headers[],
		const void *body, size_t len, long status, struct it_response *r)
{
	it_request(&d, method, path, headers, body, len, r);
	return CHECKF(r->status == status, "%s %s: status %ld, expected %ld; body %.300s",
			method, path, r->status, status, r->body);
}

static bool post(const char *path, const char *json, long status, struct it_response *r)
{
	return expect("POST", path, NULL, json, strlen(json), status, r);
}

static void check_values(const json_t *arr, const char *const want[], size_t n, const char *what)
{
	float got[16];
	long k = it_json_floats(arr, got, 16);

	if (!CHECKF(k == (long)n, "%s: %ld values, expected %zu", what, k, n))
		return;
	for (size_t i = 0; i < n; i++)
		CHECKF(it_same_f32(got[i], it_f32(want[i])), "%s[%zu]: %.9g, expected %s", what, i, got[i], want[i]);
}

/*
 * API.md's figures, to 7 significant digits. The exact float32 values come
 * from PyTorch through golden.py (worked_example.h); these only tie them to
 * the contract's text.
 */
static void check_api_md_digits(const json_t *arr, const char *const want[], size_t n, const char *what)
{
	float got[16];
	char text[32];

	if (it_json_floats(arr, got, 16) != (long)n)
		return;
	for (size_t i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "%.7g", (double)got[i]);
		CHECKF(!strcmp(text, want[i]), "%s[%zu]: %s to 7 digits, API.md says %s", what, i, text, want[i]);
	}
}

/* BatchNorm2d(1, affine=False), input [[[[0.0, 1.0]]]], 51 train steps, then eval. */
static void test_worked_example(void)
{
	static const char *const train_out[] = WX_TRAIN_OUTPUT, *const eval_out[] = WX_EVAL_OUTPUT;
	static const char *const rm[] = WX_RUNNING_MEAN, *const rv[] = WX_RUNNING_VAR;
	static const char *const bm[] = WX_BATCH_MEAN, *const bv[] = WX_BATCH_VAR;
	static const char *const md_train[] = { "-0.99998", "0.99998" }, *const md_eval[] = { "-0.7021934", "0.7087377" };
	static const char *const md_rm[] = { "0.4976808" }, *const md_rv[] = { "0.5023191" };
	const char *in = "{\"input\": [[[[0.0, 1.0]]]]}";
	struct it_response r;

	expect("PUT", "/v1/layers/bn1", NULL, "{\"num_features\": 1, \"affine\": false}", 36, 201, &r);
	it_response_finish(&r);
	for (int i = 1; i <= WX_STEPS; i++) {
		if (!post("/v1/layers/bn1/train", in, 200, &r)) {
			it_response_finish(&r);
			return;
		}
		check_values(it_get(r.json, "output", NULL), train_out, 2, "train output");
		json_t *o = it_get(r.json, "output", NULL);
		CHECKF(json_array_size(o) == 1 && json_array_size(json_array_get(o, 0)) == 1 &&
				json_array_size(json_array_get(json_array_get(o, 0), 0)) == 1,
				"train output is not nested as the input [[[[a, b]]]]");
		CHECKF(json_integer_value(it_get(r.json, "num_batches_tracked", NULL)) == i, "nbt after step %d", i);
		if (i == WX_STEPS) {
			check_values(it_get(r.json, "running_mean", NULL), rm, 1, "train running_mean");
			check_values(it_get(r.json, "running_var", NULL), rv, 1, "train running_var");
			check_api_md_digits(it_get(r.json, "output", NULL), md_train, 2, "train output");
			check_api_md_digits(it_get(r.json, "running_mean", NULL), md_rm, 1, "running_mean");
			check_api_md_digits(it_get(r.json, "running_var", NULL), md_rv, 1, "running_var");
			check_values(it_get(r.json, "batch_mean", NULL), bm, 1, "batch_mean");
			check_values(it_get(r.json, "batch_var", NULL), bv, 1, "batch_var (biased)");
		}
		it_response_finish(&r);
	}
	expect("GET", "/v1/layers/bn1", NULL, NULL, 0, 200, &r);
	json_t *st = it_get(r.json, "state", NULL);
	check_values(json_object_get(st, "running_mean"), rm, 1, "GET running_mean");
	check_values(json_object_get(st, "running_var"), rv, 1, "GET running_var");
	CHECK(json_integer_value(json_object_get(st, "num_batches_tracked")) == WX_STEPS);
	CHECK(json_object_size(st) == 3);
	struct it_snapshot before, after;
	it_response_finish(&r);

	it_snapshot_take(&d, "bn1", &before);
	post("/v1/layers/bn1/eval", in, 200, &r);
	check_values(it_get(r.json, "output", NULL), eval_out, 2, "eval output");
	check_api_md_digits(it_get(r.json, "output", NULL), md_eval, 2, "eval output");
	CHECK(json_object_size(r.json) == 1);
	it_response_finish(&r);
	it_snapshot_take(&d, "bn1", &after);
	CHECKF(it_snapshot_equal(&before, &after), "eval changed the layer");
	it_snapshot_finish(&before);
	it_snapshot_finish(&after);
}

/* The layer's config and state as the server reports them, for libbatchnorm. */
static bool fetch_layer(const char *name, struct bn_config *cfg, struct bn_state *st)
{
	struct it_response r;
	char path[256];
	bool ok = false;

	snprintf(path, sizeof(path), "/v1/layers/%s", name);
	if (!expect("GET", path, NULL, NULL, 0, 200, &r))
		goto out;
	json_t *c = it_get(r.json, "config", NULL), *s = it_get(r.json, "state", NULL);
	bn_config_default(cfg, (size_t)json_integer_value(json_object_get(c, "num_features")));
	cfg->eps = json_number_value(json_object_get(c, "eps"));
	cfg->cumulative = json_is_null(json_object_get(c, "momentum"));
	cfg->momentum = json_number_value(json_object_get(c, "momentum"));
	cfg->affine = json_is_true(json_object_get(c, "affine"));
	cfg->track_running_stats = json_is_true(json_object_get(c, "track_running_stats"));
	if (!CHECK(bn_state_init(st, cfg) == 0))
		goto out;
	size_t n = cfg->num_features;
	if (cfg->affine) {
		CHECK(it_json_floats(json_object_get(s, "weight"), st->weight, n) == (long)n);
		CHECK(it_json_floats(json_object_get(s, "bias"), st->bias, n) == (long)n);
	}
	if (cfg->track_running_stats) {
		CHECK(it_json_floats(json_object_get(s, "running_mean"), st->running_mean, n) == (long)n);
		CHECK(it_json_floats(json_object_get(s, "running_var"), st->running_var, n) == (long)n);
		st->num_batches_tracked = json_integer_value(json_object_get(s, "num_batches_tracked"));
	}
	ok = true;
out:
	it_response_finish(&r);
	return ok;
}

static void append(char *buf, size_t size, size_t *at, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void append(char *buf, size_t size, size_t *at, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (*at < size)
		*at += (size_t)vsnprintf(buf + *at, size - *at, fmt, ap);
	va_end(ap);
}

/* Write data of shape as nested arrays. */
static void nested(char *buf, size_t size, size_t *at, const size_t *shape, unsigned rank,
		const float *data, size_t *k)
{
	append(buf, size, at, "[");
	for (size_t i = 0; i < shape[0]; i++) {
		if (i)
			append(buf, size, at, ", ");
		if (rank == 1)
			append(buf, size, at, "%.9g", (double)data[(*k)++]);
		else
			nested(buf, size, at, shape + 1, rank - 1, data, k);
	}
	append(buf, size, at, "]");
}

/* Both JSON forms and .npy agree, keep their form, and match libbatchnorm's eval. */
static void test_forms(void)
{
	static const size_t shapes[][5] = { { 4, 3 }, { 2, 3, 2 }, { 2, 3, 2, 2 }, { 2, 3, 1, 2, 2 } };
	static const unsigned ranks[] = { 2, 3, 4, 5 };
	struct it_response r;
	char body[8192];

	expect("PUT", "/v1/layers/fm", NULL, "{\"num_features\": 3}", 19, 201, &r);
	it_response_finish(&r);
	post("/v1/layers/fm/train", "{\"input\": [[0.5, -1.0, 2.0], [1.5, 3.0, 2.5], [0.25, 0.0, -4.0]]}", 200, &r);
	it_response_finish(&r);
	struct bn_config cfg;
	struct bn_state st = { 0 };
	if (!fetch_layer("fm", &cfg, &st))
		return;

	for (size_t s = 0; s < 4; s++) {
		unsigned rank = ranks[s];
		struct bn_tensor x = { 0 }, y = { 0 };
		struct bn_error err;
		size_t at = 0, k = 0;

		if (!CHECK(bn_tensor_init(&x, rank, shapes[s], 1000, &err) == 0) ||
				!CHECK(bn_tensor_init(&y, rank, shapes[s], 1000, &err) == 0))
			goto next;
		for (size_t i = 0; i < x.count; i++)
			x.data[i] = (float)((double)((i * 7) % 11) * 0.375 - 1.5);
		CHECK(bn_forward_eval(&cfg, &st, &x, &y, &err) == 0);

		/* nested */
		append(body, sizeof(body), &at, "{\"input\": ");
		nested(body, sizeof(body), &at, shapes[s], rank, x.data, &k);
		append(body, sizeof(body), &at, "}");
		float got[64];
		if (post("/v1/layers/fm/eval", body, 200, &r)) {
			json_t *o = it_get(r.json, "output", NULL);
			CHECKF(json_is_array(o), "rank %u: nested input, output not nested", rank);
			/* The nesting is the shape. */
			const json_t *p = o;
			for (unsigned dim = 0; dim < rank; dim++) {
				CHECKF(json_array_size(p) == shapes[s][dim], "rank %u: output dim %u is %zu", rank, dim,
						json_array_size(p));
				p = json_array_get(p, 0);
			}
			if (CHECK(it_json_floats(o, got, 64) == (long)x.count))
				for (size_t i = 0; i < x.count; i++)
					CHECKF(it_same_f32(got[i], y.data[i]), "rank %u nested [%zu]: %.9g, libbatchnorm %.9g",
							rank, i, got[i], y.data[i]);
		}
		it_response_finish(&r);

		/* {"shape", "data"} */
		at = 0;
		append(body, sizeof(body), &at, "{\"input\": {\"shape\": [");
		for (unsigned dim = 0; dim < rank; dim++)
			append(body, sizeof(body), &at, dim ? ", %.0f" : "%.0f", (double)shapes[s][dim]);
		append(body, sizeof(body), &at, "], \"data\": [");
		for (size_t i = 0; i < x.count; i++)
			append(body, sizeof(body), &at, i ? ", %.9g" : "%.9g", (double)x.data[i]);
		append(body, sizeof(body), &at, "]}}");
		if (post("/v1/layers/fm/eval", body, 200, &r)) {
			json_t *o = it_get(r.json, "output", NULL);
			size_t shp[5];
			json_t *sh = json_object_get(o, "shape");
			CHECKF(json_object_size(o) == 2 && json_array_size(sh) == rank,
					"rank %u: shaped input, output not {shape, data}", rank);
			for (unsigned dim = 0; dim < rank && dim < json_array_size(sh); dim++) {
				shp[dim] = (size_t)json_integer_value(json_array_get(sh, dim));
				CHECK(shp[dim] == shapes[s][dim]);
			}
			if (CHECK(it_json_floats(json_object_get(o, "data"), got, 64) == (long)x.count))
				for (size_t i = 0; i < x.count; i++)
					CHECKF(it_same_f32(got[i], y.data[i]), "rank %u shaped [%zu]: %.9g, libbatchnorm %.9g",
							rank, i, got[i], y.data[i]);
		}
		it_response_finish(&r);

		/* .npy in: the JSON answer is in the {shape, data} form. */
		size_t npy_len;
		void *npy = it_npy_build("<f4", false, shapes[s], rank, x.data, x.count, &npy_len);
		const char *npy_in[] = { "Content-Type: application/x-npy", NULL };
		if (expect("POST", "/v1/layers/fm/eval", npy_in, npy, npy_len, 200, &r)) {
			json_t *o = it_get(r.json, "output", NULL);
			CHECKF(json_is_array(json_object_get(o, "shape")), "rank %u: .npy input, output not {shape, data}", rank);
			if (CHECK(it_json_floats(json_object_get(o, "data"), got, 64) == (long)x.count))
				for (size_t i = 0; i < x.count; i++)
					CHECKF(it_same_f32(got[i], y.data[i]), "rank %u .npy->JSON [%zu]", rank, i);
		}
		it_response_finish(&r);

		/* Accept: application/x-npy, from JSON and from .npy. */
		const char *npy_out[] = { "Accept: application/x-npy", NULL };
		const char *npy_both[] = { "Content-Type: application/x-npy", "Accept: application/x-npy", NULL };
		for (int both = 0; both < 2; both++) {
			if (both)
				expect("POST", "/v1/layers/fm/eval", npy_both, npy, npy_len, 200, &r);
			else
				expect("POST", "/v1/layers/fm/eval", npy_out, body, strlen(body), 200, &r);
			CHECKF(!strncmp(r.content_type, "application/x-npy", 17), "Accept npy: Content-Type '%s'",
					r.content_type);
			size_t shp[5];
			unsigned rk = 0;
			long n = it_npy_parse(r.body, r.len, shp, &rk, got, 64);
			if (CHECKF(n == (long)x.count && rk == rank, "rank %u: the .npy answer does not parse (%ld)", rank, n))
				for (size_t i = 0; i < x.count; i++) {
					if (i < rank)
						CHECK(shp[i] == shapes[s][i]);
					CHECKF(it_same_f32(got[i], y.data[i]), "rank %u .npy answer [%zu]", rank, i);
				}
			it_response_finish(&r);
		}
		free(npy);
next:
		bn_tensor_finish(&x);
		bn_tensor_finish(&y);
	}
	bn_state_finish(&st);
}

/* A train step over HTTP equals libbatchnorm's on the state before it, and .npy out carries the step. */
static void test_train_matches_library(void)
{
	const size_t shape[3] = { 3, 3, 2 };
	struct bn_tensor x = { 0 }, y = { 0 };
	struct bn_config cfg;
	struct bn_state st = { 0 };
	struct bn_error err;
	struct it_response r;
	float bm[3], bv[3], got[32];

	if (!fetch_layer("fm", &cfg, &st))
		return;
	if (!CHECK(bn_tensor_init(&x, 3, shape, 100, &err) == 0) || !CHECK(bn_tensor_init(&y, 3, shape, 100, &err) == 0))
		goto out;
	for (size_t i = 0; i < x.count; i++)
		x.data[i] = (float)((double)((i * 5) % 7) * 1.25 - 2.0);
	CHECK(bn_forward_train(&cfg, &st, &x, &y, bm, bv, &err) == 0);
	size_t len;
	void *npy = it_npy_build("<f4", false, shape, 3, x.data, x.count, &len);
	const char *h[] = { "Content-Type: application/x-npy", "Accept: application/x-npy", NULL };
	if (expect("POST", "/v1/layers/fm/train", h, npy, len, 200, &r)) {
		size_t shp[5];
		unsigned rk;
		CHECKF(r.etag[0], "train with Accept npy has no ETag");
		long n = it_npy_parse(r.body, r.len, shp, &rk, got, 32);
		if (CHECKF(n == (long)x.count, "train .npy answer does not parse"))
			for (size_t i = 0; i < x.count; i++)
				CHECKF(it_same_f32(got[i], y.data[i]), "train .npy output [%zu]", i);
	}
	it_response_finish(&r);
	free(npy);
	expect("GET", "/v1/layers/fm/state", NULL, NULL, 0, 200, &r);
	CHECK(json_integer_value(it_get(r.json, "num_batches_tracked", NULL)) == st.num_batches_tracked);
	if (CHECK(it_json_floats(it_get(r.json, "running_mean", NULL), got, 3) == 3))
		for (size_t c = 0; c < 3; c++)
			CHECKF(it_same_f32(got[c], st.running_mean[c]), "running_mean[%zu] after a .npy step", c);
	if (CHECK(it_json_floats(it_get(r.json, "running_var", NULL), got, 3) == 3))
		for (size_t c = 0; c < 3; c++)
			CHECKF(it_same_f32(got[c], st.running_var[c]), "running_var[%zu] after a .npy step", c);
	it_response_finish(&r);
	/* The step is in the history with the batch statistics libbatchnorm gives. */
	expect("GET", "/v1/layers/fm/history?after=1", NULL, NULL, 0, 200, &r);
	json_t *e = json_array_get(it_get(r.json, "steps", NULL), 0);
	CHECK(json_integer_value(json_object_get(e, "count")) == 6);
	if (CHECK(it_json_floats(json_object_get(e, "batch_mean"), got, 3) == 3))
		for (size_t c = 0; c < 3; c++)
			CHECKF(it_same_f32(got[c], bm[c]), "history batch_mean[%zu]", c);
	if (CHECK(it_json_floats(json_object_get(e, "batch_var"), got, 3) == 3))
		for (size_t c = 0; c < 3; c++)
			CHECKF(it_same_f32(got[c], bv[c]), "history batch_var[%zu]", c);
	it_response_finish(&r);
out:
	bn_tensor_finish(&x);
	bn_tensor_finish(&y);
	bn_state_finish(&st);
}

/* A missing Content-Type is JSON, and so is one with parameters. */
static void test_content_types(void)
{
	static const char *const types[] = { "Content-Type:", "Content-Type: application/json; charset=utf-8",
		"Content-Type: application/json" };
	const char *in = "{\"input\": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]}";

	for (size_t i = 0; i < 3; i++) {
		struct it_response r;
		const char *h[] = { types[i], NULL };

		if (expect("POST", "/v1/layers/fm/eval", h, in, strlen(in), 200, &r))
			CHECKF(json_is_array(it_get(r.json, "output", NULL)), "'%s': no nested output", types[i]);
		it_response_finish(&r);
	}
}

int main(int argc, char **argv)
{
	const char *args[] = { "--sync", "normal", NULL };
	void (*const tests[])(void) = {
		test_worked_example, test_forms, test_train_matches_library, test_content_types, NULL,
	};

	return it_run(&d, "http_forward", argc, argv, args, tests);
}
