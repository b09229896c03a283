/*
 * test_layers.c: every row of API.md's layer and service tables over HTTP.
 *
 * Create (201/200/409, defaults written out), inspect, list order, ETags,
 * PATCH, DELETE, GET/PUT state, reset, history paging and its bound, keys
 * a layer does not have, 405 with Allow, invalid names and unknown layers.
 */
#include "harness.h"
#include "worked_example.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_LIMIT 100

static struct it_daemon d;

/* Send, check the status (and, for errors, the problem and its code). */
static bool expect(const char *method, const char *path, const char *body, long status,
		const char *code, struct it_response *r)
{
	char what[512];

	snprintf(what, sizeof(what), "%s %s %.80s", method, path, body ? body : "");
	it_call(&d, method, path, body, r);
	if (status >= 400) {
		it_check_problem(r, status, code, what);
		return r->status == status;
	}
	if (!CHECKF(r->status == status, "%s: status %ld, expected %ld; body %.300s",
			what, r->status, status, r->body))
		return false;
	if (r->json)
		it_check_no_null(r->json, what);
	return true;
}

/* expect() and drop the answer. */
static bool expect_only(const char *method, const char *path, const char *body, long status,
		const char *code)
{
	struct it_response r;
	bool ok = expect(method, path, body, status, code, &r);

	it_response_finish(&r);
	return ok;
}

/* A JSON string's text, or "" when it is not a string. */
static const char *str_of(const json_t *j)
{
	const char *s = json_string_value(j);

	return s ? s : "";
}

static const char *lp(const char *name, const char *suffix)
{
	static __thread char buf[4][512];
	static __thread unsigned next;
	char *p = buf[next++ % 4];

	snprintf(p, 512, "/v1/layers/%s%s", name, suffix);
	return p;
}

/* obj has exactly these keys (NULL-terminated). */
static void check_keys(const json_t *obj, const char *const keys[], const char *what)
{
	size_t n = 0;

	if (!CHECKF(json_is_object(obj), "%s: not an object", what))
		return;
	for (; keys[n]; n++)
		CHECKF(json_object_get(obj, keys[n]) != NULL, "%s: key '%s' missing", what, keys[n]);
	CHECKF(json_object_size(obj) == n, "%s: %zu keys, expected %zu", what, json_object_size(obj), n);
}

/* arr is a JSON array of exactly these float32 values. */
static void check_floats(const json_t *arr, const float *want, size_t n, const char *what)
{
	float got[64];
	long k = it_json_floats(arr, got, 64);

	if (!CHECKF(k == (long)n, "%s: %ld values, expected %zu", what, k, n))
		return;
	for (size_t i = 0; i < n; i++)
		CHECKF(it_same_f32(got[i], want[i]), "%s[%zu]: %.9g, expected %.9g", what, i, got[i], want[i]);
}

static void check_int(const json_t *v, long long want, const char *what)
{
	CHECKF(json_is_integer(v) && json_integer_value(v) == want, "%s: expected the integer %lld", what, want);
}

static void test_service(void)
{
	static const struct { const char *path; long status; const char *type; } rows[] = {
		{ "/", 200, "text/html" },
		{ "/livez", 200, NULL },
		{ "/healthz", 200, NULL },
		{ "/readyz", 200, NULL },
		{ "/metrics", 200, "text/plain" },
		{ "/openapi.json", 200, "application/json" },
		{ "/nope", 404, NULL },
		{ "/v1/nope", 404, NULL },
		{ "/v1/layers/c3/nope", 404, NULL },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct it_response r;

		expect("GET", rows[i].path, NULL, rows[i].status, rows[i].status == 404 ? "not_found" : NULL, &r);
		if (rows[i].type)
			CHECKF(!strncmp(r.content_type, rows[i].type, strlen(rows[i].type)),
					"GET %s: Content-Type '%s', expected %s", rows[i].path, r.content_type, rows[i].type);
		if (!strcmp(rows[i].path, "/openapi.json")) {
			const char *v = json_string_value(it_get(r.json, "openapi", NULL));
			CHECKF(v && v[0] == '3', "/openapi.json: 'openapi' is not a 3.x version");
			CHECK(json_is_object(it_get(r.json, "paths", NULL)));
		}
		if (!strcmp(rows[i].path, "/metrics"))
			CHECKF(strstr(r.body, "# TYPE ") != NULL, "/metrics has no # TYPE line");
		it_response_finish(&r);
	}
}

static void test_create(void)
{
	struct it_response r, g;

	expect("PUT", lp("c3", ""), "{\"num_features\": 3}", 201, NULL, &r);
	size_t ll = strlen(r.location);
	CHECKF(ll >= 13 && !strcmp(r.location + ll - 13, "/v1/layers/c3"),
			"201 Location '%s' does not name /v1/layers/c3", r.location);
	CHECKF(r.etag[0], "201 has no ETag");
	expect("GET", lp("c3", ""), NULL, 200, NULL, &g);
	CHECKF(!strcmp(r.etag, g.etag), "ETag of the 201 (%s) and of GET (%s) differ", r.etag, g.etag);
	static const char *const layer_keys[] = { "name", "config", "state", "created_at", "updated_at", NULL };
	check_keys(g.json, layer_keys, "GET layer");
	CHECK(!strcmp(str_of(it_get(g.json, "name", NULL)), "c3"));
	json_t *cfg = it_get(g.json, "config", NULL);
	static const char *const cfg_keys[] = { "num_features", "eps", "momentum", "affine", "track_running_stats", NULL };
	check_keys(cfg, cfg_keys, "config");
	check_int(json_object_get(cfg, "num_features"), 3, "config.num_features");
	CHECK(json_number_value(json_object_get(cfg, "eps")) == 1e-5);
	CHECK(json_number_value(json_object_get(cfg, "momentum")) == 0.1);
	CHECK(json_is_true(json_object_get(cfg, "affine")));
	CHECK(json_is_true(json_object_get(cfg, "track_running_stats")));
	json_t *st = it_get(g.json, "state", NULL);
	static const char *const full[] = { "weight", "bias", "running_mean", "running_var", "num_batches_tracked", NULL };
	check_keys(st, full, "new layer state");
	const float ones[3] = { 1, 1, 1 }, zeros[3] = { 0, 0, 0 };
	check_floats(json_object_get(st, "weight"), ones, 3, "weight");
	check_floats(json_object_get(st, "bias"), zeros, 3, "bias");
	check_floats(json_object_get(st, "running_mean"), zeros, 3, "running_mean");
	check_floats(json_object_get(st, "running_var"), ones, 3, "running_var");
	check_int(json_object_get(st, "num_batches_tracked"), 0, "num_batches_tracked");
	it_check_time(json_string_value(json_object_get(g.json, "created_at")), "created_at");
	it_check_time(json_string_value(json_object_get(g.json, "updated_at")), "updated_at");
	it_response_finish(&r);

	/* The same config, however it is spelled, is 200 and changes nothing. */
	static const char *const same[] = {
		"{\"num_features\": 3}",
		"{\"num_features\": 3, \"eps\": 1e-5, \"momentum\": 0.1, \"affine\": true, \"track_running_stats\": true}",
		"{\"track_running_stats\": true, \"momentum\": 0.1, \"num_features\": 3, \"eps\": 0.00001}",
		"{\"num_features\": 3, \"affine\": true}",
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		expect("PUT", lp("c3", ""), same[i], 200, NULL, &r);
		CHECKF(!strcmp(r.etag, g.etag), "PUT of the same config changed the ETag: %s", same[i]);
		it_response_finish(&r);
	}
	static const char *const other[] = {
		"{\"num_features\": 4}",
		"{\"num_features\": 3, \"momentum\": null}",
		"{\"num_features\": 3, \"momentum\": 0.2}",
		"{\"num_features\": 3, \"eps\": 1e-3}",
		"{\"num_features\": 3, \"affine\": false}",
		"{\"num_features\": 3, \"track_running_stats\": false}",
	};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		expect_only("PUT", lp("c3", ""), other[i], 409, "conflict");
	struct it_snapshot a;
	it_snapshot_take(&d, "c3", &a);
	CHECKF(!strcmp(a.etag, g.etag), "a 409 changed the layer's ETag");
	it_snapshot_finish(&a);

	/* Written out first, then spelled short: the same config. */
	expect_only("PUT", lp("c3d", ""), "{\"num_features\": 3, \"eps\": 1e-05, \"momentum\": 0.1, "
			"\"affine\": true, \"track_running_stats\": true}", 201, NULL);
	expect("PUT", lp("c3d", ""), "{\"num_features\": 3}", 200, NULL, &r);
	CHECKF(json_equal(it_get(r.json, "config", NULL), cfg) || !r.json,
			"configs of c3 and c3d differ");
	it_response_finish(&r);
	it_response_finish(&g);

	expect_only("PUT", lp("u1", ""), "{\"num_features\": 3, \"colour\": 1}", 422, "unknown_key");
	expect_only("GET", lp("u1", ""), NULL, 404, "not_found");
	expect_only("PUT", lp("u1", ""), "{\"eps\": 1e-3}", 422, "invalid_config");
	expect_only("PUT", lp("u1", ""), "{\"num_features\": 3", 400, "invalid_json");
	expect_only("GET", lp("u1", ""), NULL, 404, "not_found");

	/* A 128-character name is the longest. */
	char name[129];
	memset(name, 'n', 128);
	name[128] = '\0';
	expect_only("PUT", lp(name, ""), "{\"num_features\": 1}", 201, NULL);
	expect_only("GET", lp(name, ""), NULL, 200, NULL);
	expect_only("DELETE", lp(name, ""), NULL, 204, NULL);
}

/* momentum null: the factor is 1 / num_batches_tracked. */
static void test_cumulative(void)
{
	struct it_response r;

	expect_only("PUT", lp("cma", ""), "{\"num_features\": 1, \"momentum\": null}", 201, NULL);
	expect("GET", lp("cma", ""), NULL, 200, NULL, &r);
	CHECKF(json_is_null(it_get(r.json, "config", "momentum", NULL)), "momentum null is not shown as null");
	it_response_finish(&r);
	expect_only("POST", lp("cma", "/train"), "{\"input\": [[1.0], [3.0]]}", 200, NULL);
	expect("POST", lp("cma", "/train"), "{\"input\": [[0.0], [2.0]]}", 200, NULL, &r);
	static const char *const cma_mean[] = CMA_RUNNING_MEAN, *const cma_var[] = CMA_RUNNING_VAR;
	const float m = it_f32(cma_mean[0]), v = it_f32(cma_var[0]);
	check_floats(it_get(r.json, "running_mean", NULL), &m, 1, "cumulative running_mean");
	check_floats(it_get(r.json, "running_var", NULL), &v, 1, "cumulative running_var");
	check_int(it_get(r.json, "num_batches_tracked", NULL), 2, "cumulative nbt");
	it_response_finish(&r);
}

static void test_list(void)
{
	static const char *const names[] = { "zeta", "Zeta", "0x", "a-b", "a.b", "a_b", "A", "alpha", "9" };
	struct it_response r;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		expect_only("PUT", lp(names[i], ""), "{\"num_features\": 1}", 201, NULL);
	expect_only("PUT", lp("lnt", ""), "{\"num_features\": 2, \"track_running_stats\": false}", 201, NULL);
	expect("GET", "/v1/layers", NULL, 200, NULL, &r);
	json_t *layers = it_get(r.json, "layers", NULL);
	if (!CHECKF(json_is_array(layers), "GET /v1/layers has no 'layers' array"))
		goto out;
	size_t i, found = 0;
	json_t *e;
	const char *prev = NULL;
	json_array_foreach(layers, i, e) {
		const char *name = json_string_value(json_object_get(e, "name"));
		if (!CHECKF(name, "list entry %zu has no name", i))
			continue;
		CHECKF(!prev || strcmp(prev, name) < 0, "list not in byte order: '%s' before '%s'", prev, name);
		prev = name;
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			found += !strcmp(name, names[k]);
		bool tracks = json_is_true(it_get(e, "config", "track_running_stats", NULL));
		static const char *const keys[] = { "name", "config", "num_batches_tracked", "updated_at", NULL };
		static const char *const keys_nt[] = { "name", "config", "updated_at", NULL };
		check_keys(e, tracks ? keys : keys_nt, name);
		it_check_time(json_string_value(json_object_get(e, "updated_at")), name);
		if (!strcmp(name, "lnt"))
			CHECKF(!tracks, "lnt shows track_running_stats true");
	}
	CHECKF(found == sizeof(names) / sizeof(names[0]), "list holds %zu of the %zu names", found,
			sizeof(names) / sizeof(names[0]));
out:
	it_response_finish(&r);
}

/* The ETag after each change differs from every one before; reads leave it be. */
static void test_etags(void)
{
	static const struct { const char *method, *suffix, *body; long status; } changes[] = {
		{ "PUT", "", "{\"num_features\": 2}", 201 },
		{ "POST", "/train", "{\"input\": [[0.0, 1.0], [2.0, 5.0]]}", 200 },
		{ "PATCH", "", "{\"eps\": 0.001}", 200 },
		{ "PATCH", "", "{\"momentum\": 0.5}", 200 },
		{ "PUT", "/state", "{\"running_mean\": [0.5, 0.25]}", 200 },
		{ "POST", "/train", "{\"input\": [[0.0, 1.0], [2.0, 5.0]]}", 200 },
		{ "POST", "/reset", NULL, 200 },
		{ "PUT", "/state", "{\"weight\": [2.0, 3.0]}", 200 },
		{ "DELETE", "", NULL, 204 },
		{ "PUT", "", "{\"num_features\": 2}", 201 },
	};
	enum { N = sizeof(changes) / sizeof(changes[0]) };
	char etags[N][256];

	for (size_t i = 0; i < N; i++) {
		struct it_response r;

		expect(changes[i].method, lp("et", changes[i].suffix), changes[i].body, changes[i].status, NULL, &r);
		snprintf(etags[i], sizeof(etags[i]), "%s", r.etag);
		it_response_finish(&r);
		if (changes[i].status == 204)
			continue;
		CHECKF(etags[i][0], "%s %s answered without an ETag", changes[i].method, changes[i].suffix);
		for (size_t k = 0; k < i; k++)
			CHECKF(strcmp(etags[i], etags[k]) || changes[k].status == 204,
					"ETag after change %zu (%s %s) equals the one after change %zu", i,
					changes[i].method, changes[i].suffix, k);
		struct it_snapshot s;
		it_snapshot_take(&d, "et", &s);
		CHECKF(!strcmp(s.etag, etags[i]), "after %s %s the answer's ETag %s is not GET's %s",
				changes[i].method, changes[i].suffix, etags[i], s.etag);
		it_snapshot_finish(&s);
	}
	/* Reads and eval do not change it; each carries it. */
	static const struct { const char *method, *suffix, *body; } reads[] = {
		{ "GET", "", NULL }, { "GET", "/state", NULL }, { "GET", "/history", NULL },
		{ "POST", "/eval", "{\"input\": [[0.0, 1.0]]}" },
	};
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		struct it_response r;

		expect(reads[i].method, lp("et", reads[i].suffix), reads[i].body, 200, NULL, &r);
		CHECKF(!strcmp(r.etag, etags[N - 1]), "%s %s: ETag '%s', expected the current %s",
				reads[i].method, reads[i].suffix, r.etag, etags[N - 1]);
		it_response_finish(&r);
	}
}

static void test_patch(void)
{
	struct it_response r;

	expect_only("PUT", lp("pa", ""), "{\"num_features\": 2}", 201, NULL);
	expect("PATCH", lp("pa", ""), "{\"eps\": 0.001}", 200, NULL, &r);
	CHECK(json_number_value(it_get(r.json, "config", "eps", NULL)) == 0.001);
	CHECK(json_number_value(it_get(r.json, "config", "momentum", NULL)) == 0.1);
	CHECK(!strcmp(str_of(it_get(r.json, "name", NULL)), "pa"));
	CHECKF(json_is_object(it_get(r.json, "state", NULL)), "PATCH does not answer with the layer");
	it_response_finish(&r);
	expect("PATCH", lp("pa", ""), "{\"momentum\": null}", 200, NULL, &r);
	CHECK(json_is_null(it_get(r.json, "config", "momentum", NULL)));
	CHECK(json_number_value(it_get(r.json, "config", "eps", NULL)) == 0.001);
	it_response_finish(&r);
	expect("PATCH", lp("pa", ""), "{\"momentum\": 0.25, \"eps\": 0.01}", 200, NULL, &r);
	CHECK(json_number_value(it_get(r.json, "config", "momentum", NULL)) == 0.25);
	CHECK(json_number_value(it_get(r.json, "config", "eps", NULL)) == 0.01);
	it_response_finish(&r);

	static const struct { const char *body; long status; const char *code; } bad[] = {
		{ "{\"num_features\": 3}", 422, NULL },
		{ "{\"affine\": false}", 422, NULL },
		{ "{\"track_running_stats\": false}", 422, NULL },
		{ "{\"eps\": 0.1, \"num_features\": 2}", 422, NULL },
		{ "{\"eps\": 0}", 422, "invalid_config" },
		{ "{\"eps\": -1}", 422, "invalid_config" },
		{ "{\"momentum\": 1.5}", 422, "invalid_config" },
		{ "{\"momentum\": -0.5}", 422, "invalid_config" },
		{ "{\"momentum\": \"a\"}", 422, NULL },
		{ "{\"colour\": 1}", 422, "unknown_key" },
		{ "{\"eps\": 0.1", 400, "invalid_json" },
	};
	struct it_snapshot before, after;
	it_snapshot_take(&d, "pa", &before);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_only("PATCH", lp("pa", ""), bad[i].body, bad[i].status, bad[i].code);
		it_snapshot_take(&d, "pa", &after);
		CHECKF(it_snapshot_equal(&before, &after), "PATCH %s changed the layer", bad[i].body);
		it_snapshot_finish(&after);
	}
	it_snapshot_finish(&before);
	expect("GET", lp("pa", ""), NULL, 200, NULL, &r);
	CHECK(json_number_value(it_get(r.json, "config", "eps", NULL)) == 0.01);
	check_int(it_get(r.json, "config", "num_features", NULL), 2, "patched num_features");
	it_response_finish(&r);
}

static void test_delete(void)
{
	struct it_response r;

	expect_only("PUT", lp("del", ""), "{\"num_features\": 1}", 201, NULL);
	expect_only("POST", lp("del", "/train"), "{\"input\": [[1.0], [2.0]]}", 200, NULL);
	expect("DELETE", lp("del", ""), NULL, 204, NULL, &r);
	CHECKF(r.len == 0, "204 has a body: %.100s", r.body);
	it_response_finish(&r);
	static const char *const gone[][2] = {
		{ "GET", "" }, { "DELETE", "" }, { "GET", "/state" }, { "GET", "/history" }, { "POST", "/reset" },
	};
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		expect_only(gone[i][0], lp("del", gone[i][1]), NULL, 404, "not_found");
	expect("GET", "/v1/layers", NULL, 200, NULL, &r);
	size_t i;
	json_t *e;
	json_array_foreach(it_get(r.json, "layers", NULL), i, e)
		CHECKF(strcmp(str_of(json_object_get(e, "name")), "del"), "deleted layer is listed");
	it_response_finish(&r);
	/* Its history went with it. */
	expect_only("PUT", lp("del", ""), "{\"num_features\": 1}", 201, NULL);
	expect("GET", lp("del", "/history"), NULL, 200, NULL, &r);
	CHECKF(json_array_size(it_get(r.json, "steps", NULL)) == 0, "a re-created layer has old history");
	it_response_finish(&r);
}

static void test_state(void)
{
	struct it_response r;

	expect_only("PUT", lp("st", ""), "{\"num_features\": 2}", 201, NULL);
	expect("GET", lp("st", "/state"), NULL, 200, NULL, &r);
	static const char *const full[] = { "weight", "bias", "running_mean", "running_var", "num_batches_tracked", NULL };
	check_keys(r.json, full, "GET /state");
	CHECKF(r.etag[0], "GET /state has no ETag");
	it_response_finish(&r);

	expect("PUT", lp("st", "/state"), "{\"running_mean\": [0.5, -0.5]}", 200, NULL, &r);
	check_keys(r.json, full, "PUT /state answer");
	const float rm[2] = { 0.5f, -0.5f }, one[2] = { 1, 1 }, zero[2] = { 0, 0 };
	check_floats(it_get(r.json, "running_mean", NULL), rm, 2, "loaded running_mean");
	check_floats(it_get(r.json, "running_var", NULL), one, 2, "untouched running_var");
	check_floats(it_get(r.json, "weight", NULL), one, 2, "untouched weight");
	check_floats(it_get(r.json, "bias", NULL), zero, 2, "untouched bias");
	check_int(it_get(r.json, "num_batches_tracked", NULL), 0, "untouched nbt");
	it_response_finish(&r);

	expect_only("PUT", lp("st", "/state"), "{\"num_batches_tracked\": 9007199254740992}", 200, NULL);
	expect("PUT", lp("st", "/state"), "{\"weight\": [2.0, 3.0], \"bias\": [0.25, -1.0], "
			"\"running_var\": [4.0, 0.0], \"num_batches_tracked\": 7}", 200, NULL, &r);
	const float w[2] = { 2, 3 }, b[2] = { 0.25f, -1 }, rv[2] = { 4, 0 };
	check_floats(it_get(r.json, "weight", NULL), w, 2, "loaded weight");
	check_floats(it_get(r.json, "bias", NULL), b, 2, "loaded bias");
	check_floats(it_get(r.json, "running_var", NULL), rv, 2, "loaded running_var");
	check_floats(it_get(r.json, "running_mean", NULL), rm, 2, "kept running_mean");
	check_int(it_get(r.json, "num_batches_tracked", NULL), 7, "loaded nbt");
	it_response_finish(&r);
	expect_only("PUT", lp("st", "/state"), "{}", 200, NULL);

	static const struct { const char *body; long status; const char *code; } bad[] = {
		{ "{\"running_mean\": [1.0]}", 422, NULL },
		{ "{\"running_mean\": [1.0, 2.0, 3.0]}", 422, NULL },
		{ "{\"running_mean\": []}", 422, NULL },
		{ "{\"weight\": [1e39, 1.0]}", 422, NULL },
		{ "{\"bias\": [1.0, -1e39]}", 422, NULL },
		{ "{\"running_var\": [-1.0, 1.0]}", 422, NULL },
		{ "{\"running_var\": [1.0, -1e-30]}", 422, NULL },
		{ "{\"num_batches_tracked\": 3.0}", 422, NULL },
		{ "{\"num_batches_tracked\": -1}", 422, NULL },
		{ "{\"num_batches_tracked\": 9007199254740993}", 422, NULL },
		{ "{\"num_batches_tracked\": 1e3}", 422, NULL },
		{ "{\"num_batches_tracked\": \"3\"}", 422, NULL },
		{ "{\"num_batches_tracked\": null}", 422, NULL },
		{ "{\"running_mean\": [\"a\", 1.0]}", 422, NULL },
		{ "{\"running_mean\": null}", 422, NULL },
		{ "{\"running_mean\": [[1.0, 2.0]]}", 422, NULL },
		{ "{\"running_mean\": [1.0, 2.0], \"colour\": [1.0, 2.0]}", 422, "unknown_key" },
		/* valid fields alongside a bad one change nothing either */
		{ "{\"weight\": [5.0, 5.0], \"running_var\": [-1.0, 1.0]}", 422, NULL },
		{ "{\"running_mean\": [1.0, 2.0]", 400, "invalid_json" },
	};
	struct it_snapshot before, after;
	it_snapshot_take(&d, "st", &before);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_only("PUT", lp("st", "/state"), bad[i].body, bad[i].status, bad[i].code);
		it_snapshot_take(&d, "st", &after);
		CHECKF(it_snapshot_equal(&before, &after), "PUT /state %s changed the layer", bad[i].body);
		it_snapshot_finish(&after);
	}
	it_snapshot_finish(&before);

	/* Keys the layer does not have. */
	expect_only("PUT", lp("st_na", ""), "{\"num_features\": 1, \"affine\": false}", 201, NULL);
	expect_only("PUT", lp("st_na", "/state"), "{\"weight\": [1.0]}", 422, NULL);
	expect_only("PUT", lp("st_na", "/state"), "{\"bias\": [0.0]}", 422, NULL);
	expect_only("PUT", lp("st_nt", ""), "{\"num_features\": 1, \"track_running_stats\": false}", 201, NULL);
	expect_only("PUT", lp("st_nt", "/state"), "{\"running_mean\": [0.0]}", 422, NULL);
	expect_only("PUT", lp("st_nt", "/state"), "{\"running_var\": [1.0]}", 422, NULL);
	expect_only("PUT", lp("st_nt", "/state"), "{\"num_batches_tracked\": 1}", 422, NULL);

	/* reset_running_stats(): running stats only, weight and bias kept. */
	struct it_snapshot s0;
	it_snapshot_take(&d, "st", &s0);
	expect("POST", lp("st", "/reset"), NULL, 200, NULL, &r);
	check_keys(r.json, full, "reset answer");
	check_floats(it_get(r.json, "running_mean", NULL), zero, 2, "reset running_mean");
	check_floats(it_get(r.json, "running_var", NULL), one, 2, "reset running_var");
	check_int(it_get(r.json, "num_batches_tracked", NULL), 0, "reset nbt");
	check_floats(it_get(r.json, "weight", NULL), w, 2, "weight after reset");
	check_floats(it_get(r.json, "bias", NULL), b, 2, "bias after reset");
	CHECKF(r.etag[0] && strcmp(r.etag, s0.etag), "reset did not change the ETag");
	it_response_finish(&r);
	it_snapshot_finish(&s0);
}

/* One history entry against what the train step answered. */
static void check_entry(const json_t *e, const json_t *train, long long step, long long count,
		bool tracks, const char *what)
{
	static const char *const keys[] = { "step", "at", "count", "num_batches_tracked", "batch_mean",
		"batch_var", "running_mean", "running_var", NULL };
	static const char *const keys_nt[] = { "step", "at", "count", "batch_mean", "batch_var", NULL };

	check_keys(e, tracks ? keys : keys_nt, what);
	check_int(json_object_get(e, "step"), step, what);
	check_int(json_object_get(e, "count"), count, what);
	it_check_time(json_string_value(json_object_get(e, "at")), what);
	static const char *const same[] = { "num_batches_tracked", "batch_mean", "batch_var", "running_mean", "running_var" };
	for (size_t i = 0; train && i < (tracks ? 5u : 2u); i++) {
		const char *k = same[tracks ? i : i + 1];
		CHECKF(json_equal(json_object_get(e, k), json_object_get(train, k)),
				"%s: history '%s' differs from the train answer's", what, k);
	}
}

static json_t *history(const char *name, const char *query, long long *next_after, bool *next_null)
{
	struct it_response r;
	char path[512];

	snprintf(path, sizeof(path), "/v1/layers/%s/history%s", name, query);
	expect("GET", path, NULL, 200, NULL, &r);
	json_t *steps = json_incref(it_get(r.json, "steps", NULL));
	json_t *na = it_get(r.json, "next_after", NULL);
	CHECKF(na && (json_is_null(na) || json_is_integer(na)), "%s: next_after missing or not an integer", path);
	*next_null = json_is_null(na);
	*next_after = json_is_integer(na) ? json_integer_value(na) : -1;
	CHECKF(json_is_array(steps), "%s: no 'steps' array", path);
	it_response_finish(&r);
	return steps ? steps : json_array();
}

static void check_page(const char *query, const long long *steps, size_t n, long long next)
{
	long long na;
	bool null;
	json_t *page = history("hi", query, &na, &null);

	if (CHECKF(json_array_size(page) == n, "history%s: %zu steps, expected %zu", query,
			json_array_size(page), n))
		for (size_t i = 0; i < n; i++)
			check_int(it_get(json_array_get(page, i), "step", NULL), steps[i], query);
	if (next < 0)
		CHECKF(null, "history%s: next_after %lld, expected null", query, na);
	else
		CHECKF(!null && na == next, "history%s: next_after %lld, expected %lld", query, na, next);
	json_decref(page);
}

static void test_history(void)
{
	static const struct { const char *input; long long count; } steps[] = {
		{ "[[0.0], [2.0]]", 2 },
		{ "[[[0.0, 1.0, 2.0]], [[3.0, 4.0, 8.0]]]", 6 },
		{ "{\"shape\": [2, 1, 2], \"data\": [1.0, 2.0, 3.0, 5.0]}", 4 },
		{ "[[1.0], [2.0], [4.0]]", 3 },
		{ "[[1.0], [7.0]]", 2 },
	};
	json_t *answers[5];
	char body[256];

	expect_only("PUT", lp("hi", ""), "{\"num_features\": 1}", 201, NULL);
	for (size_t i = 0; i < 5; i++) {
		struct it_response r;

		/* A reset before step 4 and a state load before step 5: neither rewinds step. */
		if (i == 3)
			expect_only("POST", lp("hi", "/reset"), NULL, 200, NULL);
		if (i == 4)
			expect_only("PUT", lp("hi", "/state"), "{\"num_batches_tracked\": 10}", 200, NULL);
		snprintf(body, sizeof(body), "{\"input\": %s}", steps[i].input);
		expect("POST", lp("hi", "/train"), body, 200, NULL, &r);
		answers[i] = json_incref(r.json);
		it_response_finish(&r);
	}
	check_int(it_get(answers[3], "num_batches_tracked", NULL), 1, "nbt after reset and a step");
	check_int(it_get(answers[4], "num_batches_tracked", NULL), 11, "nbt after loading 10 and a step");

	long long na;
	bool null;
	json_t *all = history("hi", "", &na, &null);
	CHECKF(null, "history: next_after not null on the only page");
	if (CHECKF(json_array_size(all) == 5, "history holds %zu steps, expected 5", json_array_size(all)))
		for (size_t i = 0; i < 5; i++) {
			char what[64];
			snprintf(what, sizeof(what), "history step %zu", i + 1);
			check_entry(json_array_get(all, i), answers[i], (long long)i + 1, steps[i].count, true, what);
		}
	json_decref(all);
	for (size_t i = 0; i < 5; i++)
		json_decref(answers[i]);

	static const long long s12[] = { 1, 2 }, s34[] = { 3, 4 }, s5[] = { 5 }, s45[] = { 4, 5 },
		s345[] = { 3, 4, 5 }, all5[] = { 1, 2, 3, 4, 5 };
	check_page("?after=0&limit=2", s12, 2, 2);
	check_page("?limit=2", s12, 2, 2);
	check_page("?after=2&limit=2", s34, 2, 4);
	check_page("?after=4&limit=2", s5, 1, -1);
	check_page("?after=3&limit=2", s45, 2, -1);
	check_page("?after=2", s345, 3, -1);
	check_page("?after=0&limit=1000", all5, 5, -1);
	check_page("?after=5", NULL, 0, -1);
	check_page("?after=1000000", NULL, 0, -1);

	static const char *const bad[] = {
		"?after=-1", "?after=abc", "?after=1.5", "?after=", "?after=1x", "?after=99999999999999999999999",
		"?limit=-1", "?limit=1001", "?limit=abc", "?limit=", "?limit=2x", "?limit=1e2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char path[128];
		snprintf(path, sizeof(path), "/v1/layers/hi/history%s", bad[i]);
		expect_only("GET", path, NULL, 400, "invalid_query");
	}

	/* The server keeps --history-limit entries, dropping the oldest. */
	expect_only("PUT", lp("hl", ""), "{\"num_features\": 1}", 201, NULL);
	for (int i = 0; i < HISTORY_LIMIT + 5; i++) {
		snprintf(body, sizeof(body), "{\"input\": [[%d.0], [%d.5]]}", i, i);
		if (!expect_only("POST", lp("hl", "/train"), body, 200, NULL))
			break;
	}
	all = history("hl", "?limit=1000", &na, &null);
	CHECKF(null, "bounded history: next_after not null");
	if (CHECKF(json_array_size(all) == HISTORY_LIMIT, "history keeps %zu entries with --history-limit %d",
			json_array_size(all), HISTORY_LIMIT)) {
		check_int(it_get(json_array_get(all, 0), "step", NULL), 6, "oldest kept step");
		check_int(it_get(json_array_get(all, HISTORY_LIMIT - 1), "step", NULL), HISTORY_LIMIT + 5, "newest step");
	}
	json_decref(all);
}

/* Keys a layer does not have are absent from every answer. */
static void test_absent_keys(void)
{
	static const struct { const char *name, *config; const char *const state[6]; bool tracks; } rows[] = {
		{ "naff", "{\"num_features\": 2, \"affine\": false}",
		  { "running_mean", "running_var", "num_batches_tracked", NULL }, true },
		{ "ntrk", "{\"num_features\": 2, \"track_running_stats\": false}", { "weight", "bias", NULL }, false },
		{ "none", "{\"num_features\": 2, \"affine\": false, \"track_running_stats\": false}", { NULL }, false },
	};
	static const char *const train_keys[] = { "output", "batch_mean", "batch_var", "num_batches_tracked",
		"running_mean", "running_var", NULL };
	static const char *const train_keys_nt[] = { "output", "batch_mean", "batch_var", NULL };
	const char *in = "{\"input\": [[0.0, 1.0], [2.0, 4.0]]}";

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct it_response r;
		const char *n = rows[i].name;

		expect("PUT", lp(n, ""), rows[i].config, 201, NULL, &r);
		it_response_finish(&r);
		expect("GET", lp(n, ""), NULL, 200, NULL, &r);
		check_keys(it_get(r.json, "state", NULL), rows[i].state, n);
		it_response_finish(&r);
		expect("GET", lp(n, "/state"), NULL, 200, NULL, &r);
		check_keys(r.json, rows[i].state, n);
		it_response_finish(&r);
		expect("POST", lp(n, "/train"), in, 200, NULL, &r);
		check_keys(r.json, rows[i].tracks ? train_keys : train_keys_nt, n);
		json_t *train = json_incref(r.json);
		it_response_finish(&r);
		expect("POST", lp(n, "/eval"), in, 200, NULL, &r);
		static const char *const out_keys[] = { "output", NULL };
		check_keys(r.json, out_keys, n);
		it_response_finish(&r);
		expect("POST", lp(n, "/reset"), NULL, 200, NULL, &r);
		check_keys(r.json, rows[i].state, n);
		it_response_finish(&r);
		long long na;
		bool null;
		json_t *h = history(n, "", &na, &null);
		if (CHECKF(json_array_size(h) == 1, "%s: history has %zu steps", n, json_array_size(h)))
			check_entry(json_array_get(h, 0), train, 1, 2, rows[i].tracks, n);
		json_decref(h);
		json_decref(train);
	}
}

static void test_methods(void)
{
	static const struct { const char *method, *path; const char *allow[5]; } rows[] = {
		{ "DELETE", "/v1/layers", { "GET" } },
		{ "PUT", "/v1/layers", { "GET" } },
		{ "POST", "/v1/layers/c3", { "GET", "PUT", "PATCH", "DELETE" } },
		{ "GET", "/v1/layers/c3/train", { "POST" } },
		{ "PUT", "/v1/layers/c3/eval", { "POST" } },
		{ "POST", "/v1/layers/c3/state", { "GET", "PUT" } },
		{ "DELETE", "/v1/layers/c3/history", { "GET" } },
		{ "GET", "/v1/layers/c3/reset", { "POST" } },
		{ "POST", "/", { "GET" } },
		{ "POST", "/livez", { "GET" } },
		{ "POST", "/readyz", { "GET" } },
		{ "DELETE", "/metrics", { "GET" } },
		{ "PUT", "/openapi.json", { "GET" } },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct it_response r;
		char what[128];

		snprintf(what, sizeof(what), "%s %s", rows[i].method, rows[i].path);
		expect(rows[i].method, rows[i].path, NULL, 405, "method_not_allowed", &r);
		for (size_t k = 0; rows[i].allow[k]; k++)
			CHECKF(it_header_has(r.allow, rows[i].allow[k]), "%s: Allow '%s' lacks %s", what, r.allow,
					rows[i].allow[k]);
		CHECKF(!it_header_has(r.allow, rows[i].method), "%s: Allow '%s' names the refused method", what, r.allow);
		it_response_finish(&r);
	}
}

static void test_names(void)
{
	char long_name[130];
	memset(long_name, 'a', 129);
	long_name[129] = '\0';
	const char *const names[] = {
		long_name, ".a", "-a", "_a", "a%20b", "a$b", "a:b", "a*b", "a%C3%A9", "%C3%A9", "a+b", "a,b", "a~b",
	};
	static const struct { const char *method, *suffix, *body; } uses[] = {
		{ "PUT", "", "{\"num_features\": 1}" },
		{ "GET", "", NULL },
		{ "PATCH", "", "{\"eps\": 0.1}" },
		{ "DELETE", "", NULL },
		{ "POST", "/train", "{\"input\": [[0.0], [1.0]]}" },
		{ "POST", "/eval", "{\"input\": [[0.0], [1.0]]}" },
		{ "GET", "/state", NULL },
		{ "PUT", "/state", "{\"running_mean\": [0.0]}" },
		{ "POST", "/reset", NULL },
		{ "GET", "/history", NULL },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		for (size_t k = 0; k < sizeof(uses) / sizeof(uses[0]); k++)
			expect_only(uses[k].method, lp(names[i], uses[k].suffix), uses[k].body, 400, "invalid_name");
}

static void test_unknown(void)
{
	static const struct { const char *method, *suffix, *body; const char *type; } rows[] = {
		{ "GET", "", NULL, NULL },
		{ "PATCH", "", "{\"eps\": 0.1}", NULL },
		{ "PATCH", "", "{{{", NULL },
		{ "DELETE", "", NULL, NULL },
		{ "POST", "/train", "{\"input\": [[0.0], [1.0]]}", NULL },
		{ "POST", "/train", "{{{ not json", NULL },
		{ "POST", "/train", "\x93NUMPY garbage", "Content-Type: application/x-npy" },
		{ "POST", "/eval", "[1, 2", NULL },
		{ "POST", "/eval", "{\"input\": \"x\"}", NULL },
		{ "GET", "/state", NULL, NULL },
		{ "PUT", "/state", "{\"num_batches_tracked\": -1}", NULL },
		{ "PUT", "/state", "nonsense", NULL },
		{ "POST", "/reset", NULL, NULL },
		{ "GET", "/history", NULL, NULL },
		{ "GET", "/history?after=-5", NULL, NULL },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct it_response r;
		const char *headers[] = { rows[i].type, NULL };
		char what[128];

		snprintf(what, sizeof(what), "%s %s on an unknown layer, body %.40s", rows[i].method,
				rows[i].suffix, rows[i].body ? rows[i].body : "");
		it_request(&d, rows[i].method, lp("nope", rows[i].suffix), headers, rows[i].body,
				rows[i].body ? strlen(rows[i].body) : 0, &r);
		it_check_problem(&r, 404, "not_found", what);
		it_response_finish(&r);
	}
}

int main(int argc, char **argv)
{
	char limit[16];
	snprintf(limit, sizeof(limit), "%d", HISTORY_LIMIT);
	const char *args[] = { "--history-limit", limit, "--sync", "normal", NULL };
	void (*const tests[])(void) = {
		test_service, test_create, test_cumulative, test_list, test_etags, test_patch, test_delete,
		test_state, test_history, test_absent_keys, test_methods, test_names, test_unknown, NULL,
	};

	return it_run(&d, "http_layers", argc, argv, args, tests);
}
