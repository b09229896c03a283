/*
 * test_ops.c: POST /train with {"stats": [...]}, POST /backward and GET
 * /folded over HTTP, against tests/golden/ops.json (PyTorch's numbers,
 * written by tests/golden/generate_ops.py; its path is compiled in as
 * BN_GOLDEN_DIR). Also what each refuses, with nothing changed.
 */
#include "harness.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct it_daemon d;
static json_t *golden;

static long call(const char *method, const char *path, const char *body, struct it_response *r)
{
	it_call(&d, method, path, body, r);
	return r->status;
}

static void ok(const char *method, const char *path, const char *body, long status)
{
	struct it_response r;

	call(method, path, body, &r);
	CHECKF(r.status == status, "%s %s: %ld, expected %ld: %.300s", method, path, r.status, status, r.body);
	it_response_finish(&r);
}

/* Worst error of got (a JSON array, nested or flat) against want, relative to want's largest |value|. */
static double worst(const json_t *got, const json_t *want)
{
	size_t n = json_array_size(want);
	float *g = malloc((n + 1) * sizeof(*g));
	double scale = 1e-30, w = 0;

	if (!g || it_json_floats(got, g, n + 1) != (long)n) {
		free(g);
		return INFINITY;
	}
	for (size_t i = 0; i < n; i++)
		scale = fmax(scale, fabs(json_number_value(json_array_get(want, i))));
	for (size_t i = 0; i < n; i++)
		w = fmax(w, fabs(g[i] - json_number_value(json_array_get(want, i))) / scale);
	free(g);
	return w;
}

static char *dump(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(17));
}

/* Make layer name with cfg and load state (a golden "state" object). */
static void make_layer(const char *name, const char *cfg, const json_t *state)
{
	char path[128];
	char *s = dump(state);

	snprintf(path, sizeof(path), "/v1/layers/%s", name);
	ok("PUT", path, cfg, 201);
	snprintf(path, sizeof(path), "/v1/layers/%s/state", name);
	ok("PUT", path, s, 200);
	free(s);
}

static void test_backward(void)
{
	const json_t *cases = json_object_get(golden, "backward");
	double wt = 0, wf = 0;

	for (size_t i = 0; i < json_array_size(cases); i++) {
		const json_t *c = json_array_get(cases, i), *tor = json_object_get(c, "torch");
		const json_t *st = json_object_get(c, "state");
		bool affine = json_object_get(st, "weight") != NULL;
		char name[32], cfg[128], path[64];
		struct it_response r;

		snprintf(name, sizeof(name), "bw%zu", i);
		snprintf(cfg, sizeof(cfg), "{\"num_features\": %zu, \"affine\": %s}",
				json_array_size(json_object_get(st, "running_mean")), affine ? "true" : "false");
		make_layer(name, cfg, st);
		json_t *body = json_pack("{sOsOsO}", "input", json_object_get(c, "input"), "grad_output",
				json_object_get(c, "grad_output"), "mode", json_object_get(c, "mode"));
		char *s = dump(body);
		snprintf(path, sizeof(path), "/v1/layers/%s/backward", name);
		call("POST", path, s, &r);
		if (!CHECKF(r.status == 200, "%s: %ld %.300s", name, r.status, r.body))
			goto next;
		double e = worst(it_get(r.json, "grad_input", "data", NULL),
				json_object_get(tor, "grad_input"));
		double ef = worst(it_get(r.json, "grad_input", "data", NULL),
				it_get(c, "f64", "grad_input", NULL));
		if (affine) {
			e = fmax(e, worst(json_object_get(r.json, "grad_weight"), json_object_get(tor, "grad_weight")));
			e = fmax(e, worst(json_object_get(r.json, "grad_bias"), json_object_get(tor, "grad_bias")));
		} else {
			CHECKF(!json_object_get(r.json, "grad_weight"), "%s: grad_weight without affine", name);
		}
		CHECKF(e <= 16 * FLT_EPSILON && ef <= FLT_EPSILON, "%s: relative error %.3g against torch, %.3g "
				"against float64", name, e, ef);
		wt = fmax(wt, e), wf = fmax(wf, ef);
next:
		it_response_finish(&r);
		free(s);
		json_decref(body);
	}
	printf("backward over HTTP, %zu cases: worst relative error %.3g against torch, %.3g against float64\n",
			json_array_size(cases), wt, wf);
}

static void test_folded(void)
{
	const json_t *cases = json_object_get(golden, "fold");
	double w = 0;

	for (size_t i = 0; i < json_array_size(cases); i++) {
		const json_t *c = json_array_get(cases, i), *tor = json_object_get(c, "torch");
		char name[32], cfg[128], path[64];
		struct it_response r;

		snprintf(name, sizeof(name), "fo%zu", i);
		snprintf(cfg, sizeof(cfg), "{\"num_features\": %zu, \"eps\": %.17g}",
				json_array_size(it_get(c, "state", "weight", NULL)),
				json_number_value(json_object_get(c, "eps")));
		make_layer(name, cfg, json_object_get(c, "state"));
		snprintf(path, sizeof(path), "/v1/layers/%s/folded", name);
		call("GET", path, NULL, &r);
		CHECKF(r.status == 200, "%ld %.200s", r.status, r.body);
		double e = fmax(worst(json_object_get(r.json, "scale"), json_object_get(tor, "scale")),
				worst(json_object_get(r.json, "shift"), json_object_get(tor, "shift")));
		CHECKF(e <= 2 * FLT_EPSILON, "%s: %.3g against fuse_conv_bn_weights", name, e);
		w = fmax(w, e);
		it_response_finish(&r);
	}
	printf("folded over HTTP: worst relative error %.3g against fuse_conv_bn_weights\n", w);
}

static void test_sync(void)
{
	const json_t *cases = json_object_get(golden, "sync");
	double w = 0;

	for (size_t i = 0; i < json_array_size(cases); i++) {
		const json_t *c = json_array_get(cases, i), *tor = json_object_get(c, "torch");
		const json_t *mom = json_object_get(c, "momentum");
		char name[32], cfg[128], path[64];
		struct it_response r;

		snprintf(name, sizeof(name), "sy%zu", i);
		if (json_is_null(mom))
			snprintf(cfg, sizeof(cfg), "{\"num_features\": %zu, \"momentum\": null}",
					json_array_size(it_get(c, "init", "running_mean", NULL)));
		else
			snprintf(cfg, sizeof(cfg), "{\"num_features\": %zu, \"momentum\": %.17g}",
					json_array_size(it_get(c, "init", "running_mean", NULL)), json_number_value(mom));
		make_layer(name, cfg, json_object_get(c, "init"));
		json_t *body = json_pack("{sO}", "stats", json_object_get(c, "workers"));
		char *s = dump(body);
		snprintf(path, sizeof(path), "/v1/layers/%s/train", name);
		call("POST", path, s, &r);
		CHECKF(r.status == 200, "%s: %ld %.300s", name, r.status, r.body);
		double e = fmax(worst(json_object_get(r.json, "running_mean"), json_object_get(tor, "running_mean")),
				worst(json_object_get(r.json, "running_var"), json_object_get(tor, "running_var")));
		double ef = fmax(worst(json_object_get(r.json, "batch_var"), it_get(c, "f64", "var", NULL)),
				worst(json_object_get(r.json, "invstd"), it_get(c, "f64", "invstd", NULL)));
		CHECKF(e <= 1e-5 && ef <= FLT_EPSILON / 2, "%s: %.3g against torch, %.3g against float64", name, e, ef);
		CHECK(json_integer_value(json_object_get(r.json, "num_batches_tracked")) ==
				json_integer_value(json_object_get(tor, "num_batches_tracked")));
		w = fmax(w, e);
		it_response_finish(&r);
		free(s);
		json_decref(body);
		/* The step is in the history with the global count. */
		snprintf(path, sizeof(path), "/v1/layers/%s/history", name);
		call("GET", path, NULL, &r);
		json_t *step = json_array_get(json_object_get(r.json, "steps"), 0);
		long long count = 0;
		for (size_t k = 0; k < json_array_size(json_object_get(c, "workers")); k++)
			count += json_integer_value(it_get(json_array_get(json_object_get(c, "workers"), k), "count", NULL));
		CHECKF(json_integer_value(json_object_get(step, "count")) == count, "history: %.300s", r.body);
		it_response_finish(&r);
	}
	printf("train from stats over HTTP: worst relative error %.3g against a torch train step on the "
			"concatenated batch\n", w);
}

static void refused(const char *method, const char *path, const char *body, long status, const char *code)
{
	struct it_snapshot s0, s1;
	struct it_response r;

	it_snapshot_take(&d, "oe", &s0);
	call(method, path, body, &r);
	it_check_problem(&r, status, code, body ? body : path);
	it_response_finish(&r);
	it_snapshot_take(&d, "oe", &s1);
	CHECKF(it_snapshot_equal(&s0, &s1), "%s changed the layer", body);
	it_snapshot_finish(&s0);
	it_snapshot_finish(&s1);
}

static void test_errors(void)
{
	const char *tr = "/v1/layers/oe/train", *bw = "/v1/layers/oe/backward";
	struct it_response r;

	ok("PUT", "/v1/layers/oe", "{\"num_features\": 2}", 201);
	refused("POST", tr, "{\"stats\": []}", 422, "wrong_type");
	refused("POST", tr, "{\"stats\": [{\"count\": 1, \"mean\": [1, 2], \"var\": [0, 0]}]}", 422, "too_few_values");
	refused("POST", tr, "{\"stats\": [{\"count\": 0, \"mean\": [1, 2], \"var\": [0, 0]}]}", 422, "invalid_stats");
	refused("POST", tr, "{\"stats\": [{\"count\": 3, \"mean\": [1, 2], \"var\": [0, -2]}]}", 422, "invalid_stats");
	refused("POST", tr, "{\"stats\": [{\"count\": 3, \"mean\": [1], \"var\": [0, 1]}]}", 422, "wrong_channels");
	refused("POST", tr, "{\"stats\": [{\"count\": 3, \"mean\": [1, 2], \"var\": [0, 1]}], \"x\": 1}", 422,
			"unknown_key");
	refused("POST", tr, "{\"stats\": [{\"count\": 3, \"mean\": [1e308, -1e308], \"var\": [0, 1]}, "
			"{\"count\": 3, \"mean\": [-1e308, 1e308], \"var\": [0, 1]}]}", 422, "non_finite_output");
	/* More workers than BND_MAX_WORKERS (4096). */
	size_t cap = 4100 * 48 + 64, len = 0;
	char *body = malloc(cap);
	if (CHECK(body != NULL)) {
		len += (size_t)snprintf(body, cap, "{\"stats\": [");
		for (int k = 0; k < 4097; k++)
			len += (size_t)snprintf(body + len, cap - len, "%s{\"count\": 2, \"mean\": [1, 2], \"var\": [0, 1]}",
					k ? "," : "");
		snprintf(body + len, cap - len, "]}");
		refused("POST", tr, body, 413, "too_large");
		free(body);
	}
	refused("POST", bw, "{\"input\": [[1, 2], [3, 4]]}", 422, "missing_input");
	refused("POST", bw, "{\"input\": [[1, 2], [3, 4]], \"grad_output\": [[1, 2]]}", 422, "shape_mismatch");
	refused("POST", bw, "{\"input\": [[1, 2], [3, 4]], \"grad_output\": [[1, 2], [3, \"x\"]]}", 422, "wrong_type");
	refused("POST", bw, "{\"input\": [[1, 2], [3, 4]], \"grad_output\": [[1, 2], [3, 4]], \"mode\": \"test\"}",
			422, "wrong_type");
	refused("POST", bw, "{\"input\": [[1, 2]], \"grad_output\": [[1, 2]]}", 422, "too_few_values");
	refused("POST", bw, "{\"input\": [[1, 2], [3, 4]], \"grad_output\": [[1, 2], [3, 4]], \"y\": 0}", 422,
			"unknown_key");
	refused("POST", bw, "{\"input\": [[1, 2], [3, 4]], \"grad_output\": [[1, 2], [3, 4]]", 400, "invalid_json");
	call("POST", bw, "{\"input\": [[1, 2], [3, 4]], \"grad_output\": [[1, 2], [3, 4.5e39]]}", &r);
	it_check_problem(&r, 422, "out_of_range", "grad_output beyond float32");
	CHECKF(r.json && strstr(json_string_value(json_object_get(r.json, "detail")), "grad_output"),
			"the detail names grad_output: %.200s", r.body);
	it_response_finish(&r);
	/* One value per channel is fine in eval mode, which uses the running stats. */
	ok("POST", bw, "{\"input\": [[1, 2]], \"grad_output\": [[1, 2]], \"mode\": \"eval\"}", 200);
	ok("PUT", "/v1/layers/ont", "{\"num_features\": 2, \"track_running_stats\": false}", 201);
	call("GET", "/v1/layers/ont/folded", NULL, &r);
	it_check_problem(&r, 409, "not_tracking", "folded without running stats");
	it_response_finish(&r);
}

int main(int argc, char **argv)
{
	const char *args[] = { "--sync", "normal", NULL };
	void (*const tests[])(void) = { test_backward, test_folded, test_sync, test_errors, NULL };
	json_error_t e;
	int rc;

	golden = json_load_file(BN_GOLDEN_DIR "/ops.json", 0, &e);
	if (!golden) {
		fprintf(stderr, "%s/ops.json: %s\n", BN_GOLDEN_DIR, e.text);
		return 1;
	}
	rc = it_run(&d, "http_ops", argc, argv, args, tests);
	json_decref(golden);
	return rc;
}
