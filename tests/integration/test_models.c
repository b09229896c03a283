/*
 * test_models.c: POST /v1/import and GET /v1/export with a whole model.
 *
 * A ResNet-18-shaped state_dict (its 20 BatchNorm layers with their real
 * channel counts, and every convolution and the classifier as keys the
 * import must ignore) goes in as one safetensors request and as one JSON
 * request, comes back out through both export forms, and must be bit for
 * bit what went in. Then the refusals: a bad key anywhere stores nothing
 * (the layer list is byte-identical before and after), modes and If-Match,
 * and the caps (layers per import, layers in all, safetensors header).
 */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "bn/buf.h"
#include "bn/safetensors.h"

#define MAX_IMPORT 20
#define MAX_LAYERS 70
#define NBN 20

static struct it_daemon d;

/* ResNet-18's BatchNorm layers, as torchvision names them, and their channels. */
static const struct { const char *name; size_t c; } bn[NBN] = {
	{ "bn1", 64 },
	{ "layer1.0.bn1", 64 }, { "layer1.0.bn2", 64 }, { "layer1.1.bn1", 64 }, { "layer1.1.bn2", 64 },
	{ "layer2.0.bn1", 128 }, { "layer2.0.bn2", 128 }, { "layer2.0.downsample.1", 128 },
	{ "layer2.1.bn1", 128 }, { "layer2.1.bn2", 128 },
	{ "layer3.0.bn1", 256 }, { "layer3.0.bn2", 256 }, { "layer3.0.downsample.1", 256 },
	{ "layer3.1.bn1", 256 }, { "layer3.1.bn2", 256 },
	{ "layer4.0.bn1", 512 }, { "layer4.0.bn2", 512 }, { "layer4.0.downsample.1", 512 },
	{ "layer4.1.bn1", 512 }, { "layer4.1.bn2", 512 },
};

/* Its convolutions and classifier: keys an import counts and ignores. */
static const struct { const char *name; unsigned rank; size_t shape[4]; } other[] = {
	{ "conv1.weight", 4, { 64, 3, 7, 7 } },
	{ "layer1.0.conv1.weight", 4, { 64, 64, 3, 3 } }, { "layer1.0.conv2.weight", 4, { 64, 64, 3, 3 } },
	{ "layer1.1.conv1.weight", 4, { 64, 64, 3, 3 } }, { "layer1.1.conv2.weight", 4, { 64, 64, 3, 3 } },
	{ "layer2.0.conv1.weight", 4, { 128, 64, 3, 3 } }, { "layer2.0.conv2.weight", 4, { 128, 128, 3, 3 } },
	{ "layer2.0.downsample.0.weight", 4, { 128, 64, 1, 1 } },
	{ "layer2.1.conv1.weight", 4, { 128, 128, 3, 3 } }, { "layer2.1.conv2.weight", 4, { 128, 128, 3, 3 } },
	{ "layer3.0.conv1.weight", 4, { 256, 128, 3, 3 } }, { "layer3.0.conv2.weight", 4, { 256, 256, 3, 3 } },
	{ "layer3.0.downsample.0.weight", 4, { 256, 128, 1, 1 } },
	{ "layer3.1.conv1.weight", 4, { 256, 256, 3, 3 } }, { "layer3.1.conv2.weight", 4, { 256, 256, 3, 3 } },
	{ "layer4.0.conv1.weight", 4, { 512, 256, 3, 3 } }, { "layer4.0.conv2.weight", 4, { 512, 512, 3, 3 } },
	{ "layer4.0.downsample.0.weight", 4, { 512, 256, 1, 1 } },
	{ "layer4.1.conv1.weight", 4, { 512, 512, 3, 3 } }, { "layer4.1.conv2.weight", 4, { 512, 512, 3, 3 } },
	{ "fc.weight", 2, { 1000, 512 } }, { "fc.bias", 1, { 1000 } },
};
#define NOTHER (sizeof(other) / sizeof(other[0]))

static const char *const fields[4] = { "weight", "bias", "running_mean", "running_var" };

/* Layer i's field f, value k: spread over many exponents, running_var positive. */
static float value(size_t i, int f, size_t k)
{
	uint32_t x = (uint32_t)(i * 7919u + (unsigned)f * 104729u + k * 2654435761u);
	float v;

	x ^= x >> 13;
	x *= 0x5bd1e995u;
	x ^= x >> 15;
	v = (float)(x % 2000001u) / 1000000.0f - 1.0f;
	v *= (float)(1u << (x >> 28));
	return f == 3 ? (v < 0 ? -v : v) + 0.5f : v;
}

static float *vals[NBN][4];

static void make_values(void)
{
	for (size_t i = 0; i < NBN; i++)
		for (int f = 0; f < 4; f++) {
			vals[i][f] = malloc(bn[i].c * sizeof(float));
			for (size_t k = 0; k < bn[i].c; k++)
				vals[i][f][k] = value(i, f, k);
		}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The whole state_dict as safetensors (with the ignored keys when full), in b. */
static void model_safetensors(struct bn_buf *b, bool full)
{
	static float zeros[512 * 512 * 9];
	struct bn_st_out out[NBN * 5 + NOTHER];
	char keys[NBN * 5][64];
	size_t n = 0;

	for (size_t i = 0; i < NBN; i++) {
		for (int f = 0; f < 5; f++) {
			snprintf(keys[n], sizeof(keys[n]), "%s.%s", bn[i].name, f < 4 ? fields[f] : "num_batches_tracked");
			out[n] = (struct bn_st_out){ .name = keys[n], .dtype = f < 4 ? BN_ST_F32 : BN_ST_I64,
				.rank = f < 4, .shape = { bn[i].c }, .count = f < 4 ? bn[i].c : 1,
				.f32 = f < 4 ? vals[i][f] : NULL, .i64 = (int64_t)i + 1 };
			n++;
		}
	}
	for (size_t j = 0; full && j < NOTHER; j++) {
		size_t count = 1;

		out[n] = (struct bn_st_out){ .name = other[j].name, .dtype = BN_ST_F32, .rank = other[j].rank,
			.f32 = zeros };
		for (unsigned r = 0; r < other[j].rank; r++) {
			out[n].shape[r] = other[j].shape[r];
			count *= other[j].shape[r];
		}
		out[n++].count = count;
	}
	bn_buf_init(b, 0);
	CHECK(bn_safetensors_write(b, out, n, NULL, 0) == 0);
}

/* The BatchNorm keys as JSON (and fc.bias, to be ignored); bad_key: one value made wrong. */
static char *model_json(const char *bad_key, const char *bad_value)
{
	struct bn_buf b;
	char key[64];

	bn_buf_init(&b, 0);
	bn_buf_puts(&b, "{\"fc.bias\": [0.5, 1.5]");
	for (size_t i = 0; i < NBN; i++) {
		for (int f = 0; f < 4; f++) {
			snprintf(key, sizeof(key), "%s.%s", bn[i].name, fields[f]);
			bn_buf_printf(&b, ", \"%s\": ", key);
			if (bad_key && strcmp(key, bad_key) == 0) {
				bn_buf_puts(&b, bad_value);
				continue;
			}
			for (size_t k = 0; k < bn[i].c; k++)
				bn_buf_printf(&b, "%s%.9g", k ? ", " : "[", (double)vals[i][f][k]);
			bn_buf_puts(&b, "]");
		}
		bn_buf_printf(&b, ", \"%s.num_batches_tracked\": %zu", bn[i].name, i + 1);
	}
	bn_buf_puts(&b, "}");
	return b.data;
}

static long post(const char *path, const void *body, size_t len, const char *type, const char *h2,
		struct it_response *r, double *took)
{
	const char *headers[] = { type, h2, NULL };
	double t0 = now();

	it_request(&d, "POST", path, headers, body, len, r);
	if (took)
		*took = now() - t0;
	return r->status;
}

static const char *const ST = "Content-Type: application/octet-stream";
static const char *const JS = "Content-Type: application/json";

/* The safetensors export of prefix (stripped) must be exactly the generated state_dict. */
static void check_export_st(const char *prefix)
{
	const char *accept[] = { "Accept: application/octet-stream", NULL };
	struct bn_safetensors st;
	struct bn_error e = { 0 };
	struct it_response r;
	char path[128], key[64];
	double t0 = now();
	size_t same = 0;

	snprintf(path, sizeof(path), "/v1/export?prefix=%s&strip=true", prefix);
	it_request(&d, "GET", path, accept, NULL, 0, &r);
	printf("GET %s as safetensors: %ld, %zu bytes in %.1f ms\n", path, r.status, r.len, (now() - t0) * 1e3);
	CHECK(r.status == 200 && strcmp(r.content_type, "application/octet-stream") == 0);
	if (!CHECKF(bn_safetensors_parse(r.body, r.len, 1 << 20, 1000, &st, &e) == 0, "%s", e.detail)) {
		it_response_finish(&r);
		return;
	}
	CHECKF(st.count == NBN * 5, "%zu tensors", st.count);
	for (size_t i = 0; i < NBN; i++) {
		for (int f = 0; f < 5; f++) {
			float v[512];
			int64_t n = -1;

			snprintf(key, sizeof(key), "%s.%s", bn[i].name, f < 4 ? fields[f] : "num_batches_tracked");
			for (size_t k = 0; k < st.count; k++) {
				if (strcmp(st.entries[k].name, key) != 0)
					continue;
				if (f < 4)
					same += st.entries[k].count == bn[i].c && bn_st_floats(&st.entries[k], v, &e) == 0 &&
						memcmp(v, vals[i][f], bn[i].c * 4) == 0;
				else
					same += bn_st_int64(&st.entries[k], &n, &e) == 0 && n == (int64_t)i + 1 &&
						st.entries[k].rank == 0;
			}
		}
	}
	CHECKF(same == NBN * 5, "%zu of %d tensors bit for bit", same, NBN * 5);
	printf("  %zu of %d tensors identical bit for bit\n", same, NBN * 5);
	bn_safetensors_finish(&st);
	it_response_finish(&r);
}

/* The JSON export of prefix (stripped) must be the generated values; returns the body (caller frees). */
static char *check_export_json(const char *prefix)
{
	struct it_response r;
	char path[128], key[64], *body;
	size_t same = 0;

	snprintf(path, sizeof(path), "/v1/export?prefix=%s&strip=true", prefix);
	it_call(&d, "GET", path, NULL, &r);
	CHECK(r.status == 200 && r.json && json_object_size(r.json) == NBN * 5);
	for (size_t i = 0; i < NBN && r.json; i++) {
		for (int f = 0; f < 4; f++) {
			json_t *a;
			size_t ok = 0;

			snprintf(key, sizeof(key), "%s.%s", bn[i].name, fields[f]);
			a = json_object_get(r.json, key);
			for (size_t k = 0; k < bn[i].c && json_array_size(a) == bn[i].c; k++)
				ok += it_same_f32(it_json_f32(json_array_get(a, k)), vals[i][f][k]);
			same += ok == bn[i].c;
		}
		snprintf(key, sizeof(key), "%s.num_batches_tracked", bn[i].name);
		same += json_integer_value(json_object_get(r.json, key)) == (json_int_t)i + 1;
	}
	CHECKF(same == NBN * 5, "%s: %zu of %d keys bit for bit", path, same, NBN * 5);
	body = r.body;
	r.body = NULL;
	it_response_finish(&r);
	return body;
}

static void test_resnet(void)
{
	struct it_response r;
	struct bn_buf b;
	char *json, *a, *c;
	double took;

	model_safetensors(&b, true);
	post("/v1/import?prefix=st.", b.data, b.len, ST, NULL, &r, &took);
	printf("POST /v1/import (safetensors, %zu bytes, %d BatchNorm layers, %zu other keys): %ld in %.1f ms\n",
		b.len, NBN, NOTHER, r.status, took * 1e3);
	CHECKF(r.status == 200, "%.300s", r.body);
	CHECK(json_integer_value(it_get(r.json, "created", NULL)) == NBN);
	CHECK(json_integer_value(it_get(r.json, "ignored_keys", NULL)) == (json_int_t)NOTHER);
	CHECK(json_array_size(it_get(r.json, "layers", NULL)) == NBN);
	it_response_finish(&r);
	bn_buf_finish(&b);

	json = model_json(NULL, NULL);
	post("/v1/import?prefix=js.", json, strlen(json), JS, NULL, &r, &took);
	printf("POST /v1/import (JSON, %zu bytes, %d BatchNorm layers, 1 other key): %ld in %.1f ms\n",
		strlen(json), NBN, r.status, took * 1e3);
	CHECKF(r.status == 200, "%.300s", r.body);
	CHECK(json_integer_value(it_get(r.json, "created", NULL)) == NBN);
	CHECK(json_integer_value(it_get(r.json, "ignored_keys", NULL)) == 1);
	it_response_finish(&r);
	free(json);

	check_export_st("st.");
	check_export_st("js.");
	a = check_export_json("st.");
	c = check_export_json("js.");
	CHECKF(a && c && strcmp(a, c) == 0, "the JSON exports of both imports differ");
	free(a);
	free(c);
	/* A layer as GET shows it: config inferred. */
	it_call(&d, "GET", "/v1/layers/st.layer4.0.downsample.1", NULL, &r);
	CHECK(r.status == 200);
	CHECK(json_integer_value(it_get(r.json, "config", "num_features", NULL)) == 512);
	CHECK(json_is_true(it_get(r.json, "config", "affine", NULL)));
	CHECK(json_real_value(it_get(r.json, "config", "eps", NULL)) == 1e-5);
	it_response_finish(&r);
}

/* GET /v1/layers' body (caller frees). */
static char *layer_list(void)
{
	struct it_response r;
	char *body;

	it_call(&d, "GET", "/v1/layers", NULL, &r);
	CHECK(r.status == 200);
	body = r.body;
	r.body = NULL;
	it_response_finish(&r);
	return body;
}

/* An import that must be refused with status and code, its detail naming key, storing nothing. */
static void refused(const char *path, const void *body, size_t len, const char *type, const char *h2,
		long status, const char *code, const char *key)
{
	char *before = layer_list(), *after;
	struct it_response r;

	post(path, body, len, type, h2, &r, NULL);
	it_check_problem(&r, status, code, path);
	CHECKF(!key || (r.json && strstr(json_string_value(it_get(r.json, "detail", NULL)), key)),
		"%s: the detail does not name %s: %.300s", path, key, r.body);
	after = layer_list();
	CHECKF(strcmp(before, after) == 0, "%s: the layers changed on a refused import", path);
	it_response_finish(&r);
	free(before);
	free(after);
}

/* The names in GET /v1/layers, one line. */
static void print_names(const char *when)
{
	struct it_response r;
	size_t n;

	it_call(&d, "GET", "/v1/layers", NULL, &r);
	n = json_array_size(it_get(r.json, "layers", NULL));
	printf("layers %s (%zu):", when, n);
	for (size_t i = 0; i < n; i++) {
		const char *name = json_string_value(json_object_get(json_array_get(it_get(r.json, "layers", NULL), i), "name"));

		if (strncmp(name, "bad.", 4) == 0 || strncmp(name, "mix.", 4) == 0 || i % 10 == 0)
			printf(" %s", name);
	}
	printf(" (every 10th, and all bad.* and mix.*)\n");
	it_response_finish(&r);
}

static void test_bad_key(void)
{
	struct it_response r;
	char *json, neg[8192];
	size_t n = 0;

	/* The last layer by name, so that every other one is read and planned first. */
	n += (size_t)snprintf(neg + n, sizeof(neg) - n, "[0.5");
	for (int k = 1; k < 511; k++)
		n += (size_t)snprintf(neg + n, sizeof(neg) - n, ", 0.5");
	snprintf(neg + n, sizeof(neg) - n, ", -0.25]");
	print_names("before");
	json = model_json("layer4.1.bn2.running_var", neg);
	refused("/v1/import?prefix=bad.", json, strlen(json), JS, NULL, 422, "invalid_state",
		"layer4.1.bn2.running_var[511] must be >= 0");
	print_names("after a bad running_var");
	free(json);
	json = model_json("layer3.1.bn1.bias", "[1.0, 2.0]");
	refused("/v1/import?prefix=bad.", json, strlen(json), JS, NULL, 422, "shape_mismatch",
		"layer3.1.bn1.bias");
	free(json);
	json = model_json("layer2.0.bn2.weight", "[1e39]");
	refused("/v1/import?prefix=bad.", json, strlen(json), JS, NULL, 422, NULL, "layer2.0.bn2.weight");
	free(json);

	/* A conflict on the last layer: none of the 19 before it is created either. */
	it_call(&d, "PUT", "/v1/layers/mix.layer4.1.bn2", "{\"num_features\": 512}", &r);
	CHECK(r.status == 201);
	it_response_finish(&r);
	json = model_json(NULL, NULL);
	refused("/v1/import?prefix=mix.", json, strlen(json), JS, NULL, 409, "conflict", "layer4.1.bn2");
	print_names("after a create that conflicts with mix.layer4.1.bn2");
	free(json);
}

/* The ETags of the import answer's layers, as an If-Match list. */
static void etag_list(const struct it_response *r, char *out, size_t size)
{
	json_t *layers = it_get(r->json, "layers", NULL);
	size_t n = 0;

	out[0] = '\0';
	n += (size_t)snprintf(out, size, "If-Match: ");
	for (size_t i = 0; i < json_array_size(layers) && n < size; i++)
		n += (size_t)snprintf(out + n, size - n, "%s%s", i ? ", " : "",
			json_string_value(json_object_get(json_array_get(layers, i), "etag")));
}

static void test_modes(void)
{
	char *json = model_json(NULL, NULL), ifm[4096], stale[4096];
	struct it_response r;

	/* create is the default: the layers exist now. */
	refused("/v1/import?prefix=js.", json, strlen(json), JS, NULL, 409, "conflict", "js.bn1");
	refused("/v1/import?prefix=none.&mode=update", json, strlen(json), JS, NULL, 409, "conflict", "none.bn1");
	CHECK(post("/v1/import?prefix=js.&mode=replace&eps=0.001", json, strlen(json), JS, NULL, &r, NULL) == 200);
	CHECK(json_integer_value(it_get(r.json, "updated", NULL)) == NBN);
	etag_list(&r, stale, sizeof(stale));
	it_response_finish(&r);
	it_call(&d, "GET", "/v1/layers/js.layer1.0.bn1", NULL, &r);
	CHECK(json_real_value(it_get(r.json, "config", "eps", NULL)) == 0.001);
	it_response_finish(&r);
	/* update with the ETags just answered goes through, and makes them stale. */
	CHECK(post("/v1/import?prefix=js.&mode=update", json, strlen(json), JS, stale, &r, NULL) == 200);
	etag_list(&r, ifm, sizeof(ifm));
	it_response_finish(&r);
	refused("/v1/import?prefix=js.&mode=update", json, strlen(json), JS, stale, 412,
		"precondition_failed", "js.bn1");
	/* One layer changed by a train step: its ETag alone is stale, and nothing is written. */
	it_call(&d, "POST", "/v1/layers/js.layer3.0.bn1/reset", NULL, &r);
	CHECK(r.status == 200);
	it_response_finish(&r);
	refused("/v1/import?prefix=js.&mode=replace", json, strlen(json), JS, ifm, 412,
		"precondition_failed", "js.layer3.0.bn1");
	/* If-Match on a layer that does not exist. */
	refused("/v1/import?prefix=new.&mode=replace", json, strlen(json), JS, "If-Match: *", 412,
		"precondition_failed", "new.bn1");
	free(json);
	/* update of part of the state: running stats only, the rest kept. */
	json = "{\"state_dict\": {\"bn1.running_mean\": [0.25, 0.5], \"bn1.running_var\": [2.0, 3.0]}, "
		"\"mode\": \"replace\", \"momentum\": null, \"layers\": {\"bn1\": {\"eps\": 0.5}}}";
	CHECK(post("/v1/import?prefix=part.", json, strlen(json), JS, NULL, &r, NULL) == 200);
	it_response_finish(&r);
	it_call(&d, "GET", "/v1/layers/part.bn1", NULL, &r);
	CHECK(json_real_value(it_get(r.json, "config", "eps", NULL)) == 0.5);
	CHECK(json_is_null(it_get(r.json, "config", "momentum", NULL)));
	CHECK(json_is_false(it_get(r.json, "config", "affine", NULL)));
	CHECK(json_integer_value(it_get(r.json, "state", "num_batches_tracked", NULL)) == 0);
	it_response_finish(&r);
}

static void test_caps(void)
{
	struct bn_buf b;
	char *json = model_json(NULL, NULL), *big;
	unsigned char hdr[16] = { 0 };
	struct it_response r;
	size_t n = strlen(json);

	/* One layer over --max-import-layers. */
	big = malloc(n + 64);
	snprintf(big, n + 64, "{\"zz.running_mean\": [1], \"zz.running_var\": [1], %s", json + 1);
	refused("/v1/import?prefix=cap.", big, strlen(big), JS, NULL, 413, "too_large", "zz.running_");
	free(big);
	/* A safetensors header over its cap, refused on its length alone. */
	hdr[3] = 1; /* 16 MiB */
	refused("/v1/import", hdr, sizeof(hdr), ST, NULL, 413, "too_large", "header");
	/* --max-layers 70: 42 layers stored; 20 more fit, 20 after that do not. */
	model_safetensors(&b, false);
	CHECK(post("/v1/import?prefix=c1.", b.data, b.len, ST, NULL, &r, NULL) == 200);
	it_response_finish(&r);
	refused("/v1/import?prefix=c2.", b.data, b.len, ST, NULL, 409, "too_many_layers", "max-layers");
	bn_buf_finish(&b);
	free(json);
}

/* Run sql on the daemon's database from a second connection. */
static void db_exec(const char *sql)
{
	sqlite3 *db = NULL;

	if (it_store_pg()) {
		CHECKF(it_pg_sql(&d, sql, NULL) == 0, "%s", sql);
		return;
	}

	CHECK(sqlite3_open(d.db, &db) == SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	CHECKF(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

static long db_count(const char *like)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long n = -1;

	if (it_store_pg()) {
		char sql[160];

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM layers WHERE name LIKE '%s'", like);
		CHECK(it_pg_sql(&d, sql, &n) == 0);
		return n;
	}
	CHECK(sqlite3_open(d.db, &db) == SQLITE_OK);
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM layers WHERE name LIKE ?1", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_bind_text(st, 1, like, -1, SQLITE_STATIC) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* The store refuses the last of 20 inserts: the 19 before it must not stay in the database. */
static void test_store_failure(void)
{
	struct bn_buf b;

	if (it_store_pg())
		db_exec("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
			"$$BEGIN RAISE EXCEPTION 'refused by the test'; END$$; "
			"CREATE TRIGGER refuse_last BEFORE INSERT ON layers FOR EACH ROW "
			"WHEN (NEW.name = 'tx.layer4.1.bn2') EXECUTE FUNCTION refuse()");
	else
		db_exec("CREATE TRIGGER refuse_last BEFORE INSERT ON layers WHEN NEW.name = 'tx.layer4.1.bn2' "
			"BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
	model_safetensors(&b, false);
	refused("/v1/import?prefix=tx.", b.data, b.len, ST, NULL, 503, "store_unavailable", "nothing changed");
	CHECKF(db_count("tx.%") == 0, "%ld rows of a failed import stayed in the database", db_count("tx.%"));
	db_exec(it_store_pg() ? "DROP TRIGGER refuse_last ON layers" : "DROP TRIGGER refuse_last");
	bn_buf_finish(&b);
}

static void test_forms(void)
{
	const char *accept[] = { "Accept: application/octet-stream", NULL };
	unsigned char junk[40] = { 24 };
	struct it_response r;
	const char *b;

	refused("/v1/import", "x", 1, "Content-Type: text/plain", NULL, 415, "unsupported_media_type", NULL);
	refused("/v1/import", "{\"a.running_mean\": [1], ", 24, JS, NULL, 400, "invalid_json", NULL);
	memcpy(junk + 8, "{\"a.weight\": {\"dtype\": 3}}      ", 32);
	refused("/v1/import", junk, sizeof(junk), ST, NULL, 400, "invalid_safetensors", "a.weight");
	b = "{\"running_mean\": [1], \"running_var\": [1]}";
	refused("/v1/import", b, strlen(b), JS, NULL, 422, "invalid_name", "running_mean");
	b = "{\"x.running_mean\": [1], \"x.running_var\": [1]}";
	refused("/v1/import?prefix=a/b.", b, strlen(b), JS, NULL, 422, "invalid_name", "x.running_mean");
	refused("/v1/import?mode=merge", b, strlen(b), JS, NULL, 400, "invalid_query", "mode");
	b = "{\"x.running_mean\": [1], \"x.running_var\": [1], \"x.weight\": [1]}";
	refused("/v1/import", b, strlen(b), JS, NULL, 422, "invalid_state", "x.weight");
	b = "{\"x.running_mean\": [1], \"x.running_var\": [1], \"x.num_batches_tracked\": 1.0}";
	refused("/v1/import", b, strlen(b), JS, NULL, 422, "wrong_type", "x.num_batches_tracked");
	b = "{\"state_dict\": {}, \"layers\": {\"nope\": {\"eps\": 0.1}}}";
	refused("/v1/import", b, strlen(b), JS, NULL, 422, "unknown_key", "nope");
	b = "{\"state_dict\": {\"x.running_mean\": [1], \"x.running_var\": [1]}, \"eps\": -1}";
	refused("/v1/import", b, strlen(b), JS, NULL, 422, "invalid_config", "x.running_mean");
	/* A bare module's state_dict, named by the prefix alone. */
	b = "{\"running_mean\": [1, 2], \"running_var\": [1, 2], \"weight\": [3, 4], \"bias\": [5, 6]}";
	CHECK(post("/v1/import?prefix=single", b, strlen(b), JS, NULL, &r, NULL) == 200);
	CHECK(strcmp(json_string_value(it_get(json_array_get(it_get(r.json, "layers", NULL), 0), "name", NULL)),
		"single") == 0);
	it_response_finish(&r);
	/* Export: unknown prefix is an empty state_dict; unstripped keys are full names. */
	it_call(&d, "GET", "/v1/export?prefix=nothing.", NULL, &r);
	CHECK(r.status == 200 && json_object_size(r.json) == 0);
	it_response_finish(&r);
	it_request(&d, "GET", "/v1/export?prefix=nothing.", accept, NULL, 0, &r);
	CHECK(r.status == 200 && r.len == 16); /* 8-byte length, "{}" padded to 8 */
	it_response_finish(&r);
	it_call(&d, "GET", "/v1/export?prefix=single", NULL, &r);
	CHECK(json_integer_value(json_object_get(r.json, "single.num_batches_tracked")) == 0);
	CHECK(json_array_size(json_object_get(r.json, "single.weight")) == 2);
	it_response_finish(&r);
	it_call(&d, "GET", "/v1/export?strip=yes", NULL, &r);
	it_check_problem(&r, 400, "invalid_query", "strip=yes");
	it_response_finish(&r);
}

/* PUT /state with safetensors; .npy float64 input trains as its float32 rounding does. */
static void test_binary_forms(void)
{
	const float mean[2] = { 0.25f, -4.0f }, var[2] = { 2.0f, 0.0f }, neg[2] = { 1.0f, -1.0f };
	struct bn_st_out t[3] = {
		{ .name = "running_mean", .dtype = BN_ST_F32, .rank = 1, .shape = { 2 }, .count = 2, .f32 = mean },
		{ .name = "running_var", .dtype = BN_ST_F32, .rank = 1, .shape = { 2 }, .count = 2, .f32 = var },
		{ .name = "num_batches_tracked", .dtype = BN_ST_I64, .count = 1, .i64 = 9 },
	};
	const char *npy_headers[] = { "Content-Type: application/x-npy", NULL };
	/* Values exact in float32, written as float64: the answer must equal the float32 one's. */
	static const double x64[6] = { 0.5, 1.25, -3.0, 7.0, 2.0, -0.125 };
	static const float x32[6] = { 0.5f, 1.25f, -3.0f, 7.0f, 2.0f, -0.125f };
	size_t shape[2] = { 3, 2 }, len, len32;
	struct it_response r, r32;
	struct bn_buf b;
	unsigned char *npy, *npy32;

	it_call(&d, "PUT", "/v1/layers/bin", "{\"num_features\": 2}", &r);
	CHECK(r.status == 201);
	it_response_finish(&r);
	bn_buf_init(&b, 0);
	bn_safetensors_write(&b, t, 3, NULL, 0);
	it_request(&d, "PUT", "/v1/layers/bin/state", (const char *[]){ ST, NULL }, b.data, b.len, &r);
	CHECKF(r.status == 200, "%.300s", r.body);
	CHECK(json_integer_value(it_get(r.json, "num_batches_tracked", NULL)) == 9);
	CHECK(it_same_f32(it_json_f32(json_array_get(it_get(r.json, "running_mean", NULL), 1)), -4.0f));
	it_response_finish(&r);
	bn_buf_finish(&b);
	t[1].f32 = neg;
	bn_buf_init(&b, 0);
	bn_safetensors_write(&b, t, 3, NULL, 0);
	it_request(&d, "PUT", "/v1/layers/bin/state", (const char *[]){ ST, NULL }, b.data, b.len, &r);
	it_check_problem(&r, 422, "invalid_state", "negative running_var by safetensors");
	it_response_finish(&r);
	bn_buf_finish(&b);

	npy32 = it_npy_build("<f4", false, shape, 2, x32, 6, &len32);
	/* it_npy_build writes float32 only: the float64 file is made here. */
	{
		const char *h = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }";
		size_t hl = 128 - 10;

		len = 128 + sizeof(x64);
		npy = calloc(1, len);
		memcpy(npy, "\x93NUMPY\x01\x00", 8);
		npy[8] = (unsigned char)hl;
		memset(npy + 10, ' ', hl);
		memcpy(npy + 10, h, strlen(h));
		npy[127] = '\n';
		memcpy(npy + 128, x64, sizeof(x64));
	}
	it_request(&d, "POST", "/v1/layers/bin/eval", npy_headers, npy, len, &r);
	it_request(&d, "POST", "/v1/layers/bin/eval", npy_headers, npy32, len32, &r32);
	CHECKF(r.status == 200 && r32.status == 200 && strcmp(r.body, r32.body) == 0,
		"<f8 and <f4 eval differ: %.200s / %.200s", r.body, r32.body);
	it_response_finish(&r);
	it_response_finish(&r32);
	free(npy);
	free(npy32);
}

/* With a 1 MiB memory budget, a JSON import whose tree could pass it is refused before it is read. */
static void test_budget(void)
{
	char *json = model_json(NULL, NULL);
	struct it_response r;

	refused("/v1/import?prefix=mem.", json, strlen(json), JS, NULL, 413, "too_large", "memory budget");
	it_call(&d, "GET", "/v1/export", NULL, &r);
	CHECK(r.status == 200 && json_object_size(r.json) == 0);
	it_response_finish(&r);
	free(json);

	/* A float16 .npy decodes to twice its bytes: 600 KB of body is 1.2 MB of input, over 1 MiB. */
	{
		const char *h = "{'descr': '<f2', 'fortran_order': False, 'shape': (150000, 2), }";
		const char *npy_headers[] = { "Content-Type: application/x-npy", NULL };
		size_t len = 128 + 300000 * 2;
		unsigned char *npy = calloc(1, len);

		memcpy(npy, "\x93NUMPY\x01\x00", 8);
		npy[8] = 128 - 10;
		memset(npy + 10, ' ', 118);
		memcpy(npy + 10, h, strlen(h));
		npy[127] = '\n';
		it_call(&d, "PUT", "/v1/layers/half", "{\"num_features\": 2}", &r);
		it_response_finish(&r);
		it_request(&d, "POST", "/v1/layers/half/eval", npy_headers, npy, len, &r);
		it_check_problem(&r, 413, "too_large", "float16 .npy over the budget once decoded");
		CHECKF(r.json && strstr(json_string_value(it_get(r.json, "detail", NULL)), "the decoded input"),
			"%.300s", r.body);
		it_response_finish(&r);
		free(npy);
	}
}

/* The budget case needs a daemon of its own, started with --max-memory. */
static void run_budget(int argc, char **argv)
{
	const char *args[] = { "--sync", "normal", "--max-memory", "1048576", NULL };

	if (it_daemon_init(&d, argc, argv) < 0)
		return;
	if (CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not start with --max-memory")) {
		test_budget();
		CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
	}
	it_daemon_finish(&d);
}

int main(int argc, char **argv)
{
	const char *args[] = { "--sync", "normal", "--max-import-layers", "20", "--max-layers", "70", NULL };
	void (*const tests[])(void) = { test_resnet, test_store_failure, test_bad_key, test_modes, test_caps, test_forms,
		test_binary_forms, NULL };
	int rc;

	make_values();
	run_budget(argc, argv);
	rc = it_run(&d, "http_models", argc, argv, args, tests);
	for (size_t i = 0; i < NBN; i++)
		for (int f = 0; f < 4; f++)
			free(vals[i][f]);
	return rc;
}
