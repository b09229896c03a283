/*
 * test_bad_input.c: every bad input gets its status and code, and changes nothing.
 *
 * A table of train/eval bodies (JSON and .npy) that do not parse or are not
 * valid inputs, bad configs, wrong Content-Types, an element cap, a 100 MB
 * body and 10,000-deep nesting. After each, the layer's GET /state and ETag
 * must be what they were, and the server must go on serving.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ELEMENTS 100000
#define MAX_BODY "67108864"

static struct it_daemon d;

/* A body: literal JSON, or a .npy made by a builder. */
enum kind { JSON, NPY, DEEP_OK, DEEP_OPEN, RANK6 };

enum npy_flaw { NPY_FINE, NPY_MAGIC, NPY_F8, NPY_BIG_ENDIAN, NPY_FORTRAN, NPY_TRUNCATED, NPY_HLEN_PAST_END,
	NPY_EXTRA, NPY_NAN, NPY_INF, NPY_RANK1, NPY_CHANNELS, NPY_ONE_PER_CHANNEL, NPY_EMPTY };

struct bad {
	const char *what;
	enum kind kind;
	const char *json;          /* JSON: the whole body */
	enum npy_flaw flaw;        /* NPY */
	const char *content_type;  /* NULL: application/json (application/x-npy for NPY) */
	long status;
	const char *code;
	long alt_status;           /* a second acceptable answer where API.md allows two, else 0 */
	const char *alt_code;
	bool train_only;           /* one value per channel is fine for eval with running stats */
};

static const struct bad table[] = {
	{ "malformed JSON", JSON, "{\"input\": [[1.0, 2.0, 3.0],, [1.0, 2.0, 3.0]]}", 0, NULL, 400, "invalid_json", 0, NULL, false },
	{ "truncated JSON", JSON, "{\"input\": [[1.0, 2.0, 3.0], [1.0, 2.", 0, NULL, 400, "invalid_json", 0, NULL, false },
	{ "empty body", JSON, "", 0, NULL, 400, "invalid_json", 0, NULL, false },
	{ "trailing junk", JSON, "{\"input\": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]} x", 0, NULL, 400, "invalid_json", 0, NULL, false },
	{ "NaN literal", JSON, "{\"input\": [[NaN, 2.0, 3.0], [4.0, 5.0, 6.0]]}", 0, NULL, 400, "invalid_json", 0, NULL, false },
	{ "Infinity literal", JSON, "{\"input\": [[Infinity, 2.0, 3.0], [4.0, 5.0, 6.0]]}", 0, NULL, 400, "invalid_json", 0, NULL, false },
	{ "single quotes", JSON, "{'input': [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}", 0, NULL, 400, "invalid_json", 0, NULL, false },
	{ "ragged rows", JSON, "{\"input\": [[1.0, 2.0, 3.0], [4.0, 5.0]]}", 0, NULL, 422, "ragged_array", 0, NULL, false },
	{ "ragged inner", JSON, "{\"input\": [[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[1.0, 2.0], [3.0, 4.0], [5.0]]]}", 0, NULL, 422, "ragged_array", 0, NULL, false },
	{ "array then number", JSON, "{\"input\": [[1.0, 2.0, 3.0], 4.0]}", 0, NULL, 422, NULL, 0, NULL, false },
	{ "a string value", JSON, "{\"input\": [[\"a\", 2.0, 3.0], [4.0, 5.0, 6.0]]}", 0, NULL, 422, "wrong_type", 0, NULL, false },
	{ "a null value", JSON, "{\"input\": [[null, 2.0, 3.0], [4.0, 5.0, 6.0]]}", 0, NULL, 422, "wrong_type", 0, NULL, false },
	{ "a boolean value", JSON, "{\"input\": [[true, 2.0, 3.0], [4.0, 5.0, 6.0]]}", 0, NULL, 422, "wrong_type", 0, NULL, false },
	{ "input a string", JSON, "{\"input\": \"[[1.0, 2.0, 3.0]]\"}", 0, NULL, 422, "wrong_type", 0, NULL, false },
	{ "input null", JSON, "{\"input\": null}", 0, NULL, 422, "wrong_type", 0, NULL, false },
	{ "body an array", JSON, "[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]", 0, NULL, 422, NULL, 0, NULL, false },
	{ "1e39", JSON, "{\"input\": [[1e39, 2.0, 3.0], [4.0, 5.0, 6.0]]}", 0, NULL, 422, "out_of_range", 0, NULL, false },
	{ "-1e39", JSON, "{\"input\": [[1.0, 2.0, 3.0], [4.0, 5.0, -1e39]]}", 0, NULL, 422, "out_of_range", 0, NULL, false },
	{ "1e400 in data", JSON, "{\"input\": {\"shape\": [2, 3], \"data\": [1, 2, 3, 4, 5, 1e400]}}", 0, NULL, 422, "out_of_range", 0, NULL, false },
	{ "rank 1", JSON, "{\"input\": [1.0, 2.0, 3.0]}", 0, NULL, 422, "bad_rank", 0, NULL, false },
	{ "rank 1 shaped", JSON, "{\"input\": {\"shape\": [3], \"data\": [1.0, 2.0, 3.0]}}", 0, NULL, 422, "bad_rank", 0, NULL, false },
	{ "rank 6 nested", RANK6, NULL, 0, NULL, 422, "bad_rank", 0, NULL, false },
	{ "rank 6 shaped", JSON, "{\"input\": {\"shape\": [2, 3, 1, 1, 1, 1], \"data\": [1, 2, 3, 4, 5, 6]}}", 0, NULL, 422, "bad_rank", 0, NULL, false },
	{ "4 channels for 3", JSON, "{\"input\": [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]}", 0, NULL, 422, "wrong_channels", 0, NULL, false },
	{ "2 channels for 3", JSON, "{\"input\": [[[1.0], [2.0]], [[3.0], [4.0]]]}", 0, NULL, 422, "wrong_channels", 0, NULL, false },
	{ "one value per channel (N, C)", JSON, "{\"input\": [[1.0, 2.0, 3.0]]}", 0, NULL, 422, "too_few_values", 0, NULL, true },
	{ "one value per channel (1, C, 1, 1)", JSON, "{\"input\": [[[[1.0]], [[2.0]], [[3.0]]]]}", 0, NULL, 422, "too_few_values", 0, NULL, true },
	{ "shape and data disagree", JSON, "{\"input\": {\"shape\": [2, 3], \"data\": [1, 2, 3, 4, 5]}}", 0, NULL, 422, "shape_mismatch", 0, NULL, false },
	{ "data longer than shape", JSON, "{\"input\": {\"shape\": [2, 3], \"data\": [1, 2, 3, 4, 5, 6, 7]}}", 0, NULL, 422, "shape_mismatch", 0, NULL, false },
	/* Its product overflows 64 bits; too large, or not the data's shape: either way refused safely. */
	{ "shape product overflows", JSON, "{\"input\": {\"shape\": [4294967296, 4294967296, 2], \"data\": [1, 2]}}", 0, NULL, 413, "too_large", 422, "shape_mismatch", false },
	{ "shape a float", JSON, "{\"input\": {\"shape\": [2.5, 3], \"data\": [1, 2, 3, 4, 5, 6]}}", 0, NULL, 422, NULL, 0, NULL, false },
	{ "shape negative", JSON, "{\"input\": {\"shape\": [-2, 3], \"data\": [1, 2, 3, 4, 5, 6]}}", 0, NULL, 422, NULL, 0, NULL, false },
	{ "data a string", JSON, "{\"input\": {\"shape\": [2, 3], \"data\": [1, 2, 3, 4, 5, \"6\"]}}", 0, NULL, 422, "wrong_type", 0, NULL, false },
	{ "empty dimension shaped", JSON, "{\"input\": {\"shape\": [2, 0], \"data\": []}}", 0, NULL, 422, "empty_dimension", 0, NULL, false },
	{ "empty dimension nested", JSON, "{\"input\": [[], []]}", 0, NULL, 422, "empty_dimension", 0, NULL, false },
	{ "no input", JSON, "{}", 0, NULL, 422, "missing_input", 0, NULL, false },
	{ "an unknown key", JSON, "{\"input\": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], \"extra\": 1}", 0, NULL, 422, "unknown_key", 0, NULL, false },
	{ "nesting 10,000 deep", DEEP_OK, NULL, 0, NULL, 422, "bad_rank", 0, NULL, false },
	{ "10,000 unclosed brackets", DEEP_OPEN, NULL, 0, NULL, 400, "invalid_json", 0, NULL, false },
	{ "text/plain", JSON, "{\"input\": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}", 0, "Content-Type: text/plain", 415, "unsupported_media_type", 0, NULL, false },
	{ "a form", JSON, "input=1", 0, "Content-Type: application/x-www-form-urlencoded", 415, "unsupported_media_type", 0, NULL, false },
	{ "octet-stream", NPY, NULL, NPY_FINE, "Content-Type: application/octet-stream", 415, "unsupported_media_type", 0, NULL, false },
	{ ".npy as JSON", NPY, NULL, NPY_FINE, "Content-Type: application/json", 400, "invalid_json", 0, NULL, false },
	{ "JSON as .npy", JSON, "{\"input\": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}", 0, "Content-Type: application/x-npy", 400, "invalid_npy", 0, NULL, false },
	{ ".npy bad magic", NPY, NULL, NPY_MAGIC, NULL, 400, "invalid_npy", 0, NULL, false },
	{ ".npy <i4", NPY, NULL, NPY_F8, NULL, 422, "unsupported_dtype", 0, NULL, false },
	{ ".npy =f4", NPY, NULL, NPY_BIG_ENDIAN, NULL, 422, "unsupported_dtype", 0, NULL, false },
	{ ".npy fortran_order True", NPY, NULL, NPY_FORTRAN, NULL, 422, "unsupported_dtype", 0, NULL, false },
	{ ".npy truncated data", NPY, NULL, NPY_TRUNCATED, NULL, 400, "invalid_npy", 0, NULL, false },
	{ ".npy header length past the end", NPY, NULL, NPY_HLEN_PAST_END, NULL, 400, "invalid_npy", 0, NULL, false },
	{ ".npy data past the shape", NPY, NULL, NPY_EXTRA, NULL, 400, "invalid_npy", 0, NULL, false },
	{ ".npy empty", NPY, NULL, NPY_EMPTY, NULL, 400, "invalid_npy", 0, NULL, false },
	{ ".npy NaN", NPY, NULL, NPY_NAN, NULL, 422, "not_finite", 0, NULL, false },
	{ ".npy infinity", NPY, NULL, NPY_INF, NULL, 422, "not_finite", 0, NULL, false },
	{ ".npy rank 1", NPY, NULL, NPY_RANK1, NULL, 422, "bad_rank", 0, NULL, false },
	{ ".npy 4 channels", NPY, NULL, NPY_CHANNELS, NULL, 422, "wrong_channels", 0, NULL, false },
	{ ".npy one value per channel", NPY, NULL, NPY_ONE_PER_CHANNEL, NULL, 422, "too_few_values", 0, NULL, true },
};

static char *deep(bool closed)
{
	const size_t depth = 10000;
	char *s = malloc(2 * depth + 32);
	size_t at = 0;

	if (!s)
		return NULL;
	at += (size_t)sprintf(s, "{\"input\": ");
	memset(s + at, '[', depth);
	at += depth;
	at += (size_t)sprintf(s + at, "1.0");
	if (closed) {
		memset(s + at, ']', depth);
		at += depth;
		s[at++] = '}';
	}
	s[at] = '\0';
	return s;
}

static void *make_npy(enum npy_flaw flaw, size_t *len)
{
	size_t shape[4] = { 2, 3 };
	unsigned rank = 2;
	float data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	const char *descr = "<f4";
	size_t count = 6;

	switch (flaw) {
	case NPY_F8: descr = "<i4"; break; /* float16 and float64 convert; integers do not */
	case NPY_BIG_ENDIAN: descr = "=f4"; break; /* numpy writes < or >, never = */
	case NPY_NAN: data[4] = __builtin_nanf(""); break;
	case NPY_INF: data[1] = __builtin_inff(); break;
	case NPY_RANK1: rank = 1; shape[0] = 6; break;
	case NPY_CHANNELS: shape[0] = 2; shape[1] = 4; count = 8; break;
	case NPY_ONE_PER_CHANNEL: shape[0] = 1; count = 3; break;
	default: break;
	}
	unsigned char *b = it_npy_build(descr, flaw == NPY_FORTRAN, shape, rank, data, count, len);
	if (!b)
		return NULL;
	switch (flaw) {
	case NPY_MAGIC: b[1] = 'X'; break;
	case NPY_TRUNCATED: *len -= 6; break;
	case NPY_HLEN_PAST_END: b[8] = 0x00; b[9] = 0xf0; break;
	case NPY_EMPTY: *len = 0; break;
	case NPY_EXTRA: {
		unsigned char *more = realloc(b, *len + 4);
		if (!more)
			break;
		b = more;
		memset(b + *len, 0, 4);
		*len += 4;
		break;
	}
	default: break;
	}
	return b;
}

/* Send one row to path and check the answer and that nothing changed. */
static void run_row(const struct bad *row, const char *path)
{
	void *body;
	size_t len;
	char *owned = NULL;
	char what[256];
	struct it_response r;
	struct it_snapshot before, after;

	snprintf(what, sizeof(what), "%s to %s", row->what, path);
	switch (row->kind) {
	case JSON:
		body = (void *)row->json;
		len = strlen(row->json);
		break;
	case NPY:
		owned = body = make_npy(row->flaw, &len);
		break;
	case RANK6:
		/* shape (2, 3, 1, 1, 1, 1) */
		owned = body = strdup("{\"input\": [[[[[[1.0]]]], [[[[2.0]]]], [[[[3.0]]]]], "
				"[[[[[4.0]]]], [[[[5.0]]]], [[[[6.0]]]]]]}");
		len = strlen(owned);
		break;
	default:
		owned = body = deep(row->kind == DEEP_OK);
		len = body ? strlen(owned) : 0;
		break;
	}
	if (!CHECKF(body, "%s: out of memory building the body", what))
		return;
	const char *ct = row->content_type ? row->content_type :
		row->kind == NPY ? "Content-Type: application/x-npy" : "Content-Type: application/json";
	const char *headers[] = { ct, NULL };

	it_snapshot_take(&d, "bad", &before);
	it_request(&d, "POST", path, headers, body, len, &r);
	if (row->alt_status && r.status == row->alt_status)
		it_check_problem(&r, row->alt_status, row->alt_code, what);
	else
		it_check_problem(&r, row->status, row->code, what);
	/* API.md: every answer about one layer carries its current ETag, refusals included. */
	if (r.status == 422)
		CHECKF(!strcmp(r.etag, before.etag), "%s: the 422 carries ETag '%s', not the layer's %s", what,
				r.etag, before.etag);
	if (row->status == 415) {
		const char *detail = json_string_value(it_get(r.json, "detail", NULL));
		CHECKF(detail && strstr(detail, "application/json") && strstr(detail, "application/x-npy"),
				"%s: the 415 detail does not name the accepted types: %s", what, detail ? detail : "");
	}
	it_response_finish(&r);
	it_snapshot_take(&d, "bad", &after);
	CHECKF(it_snapshot_equal(&before, &after), "%s changed the layer", what);
	it_snapshot_finish(&before);
	it_snapshot_finish(&after);
	free(owned);
}

static void test_table(void)
{
	struct it_response r;

	it_call(&d, "PUT", "/v1/layers/bad", "{\"num_features\": 3}", &r);
	CHECK(r.status == 201);
	it_response_finish(&r);
	it_call(&d, "POST", "/v1/layers/bad/train", "{\"input\": [[1.0, 2.0, 3.0], [2.0, 0.0, 5.0]]}", &r);
	CHECK(r.status == 200);
	it_response_finish(&r);

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		run_row(&table[i], "/v1/layers/bad/train");
		if (!table[i].train_only)
			run_row(&table[i], "/v1/layers/bad/eval");
		if (!CHECKF(it_daemon_alive(&d), "batchnormd died on '%s'", table[i].what))
			return;
	}
}

/* Non-finite output: huge loaded weights make train and eval refuse, changing nothing. */
static void test_non_finite_output(void)
{
	struct it_response r;
	struct it_snapshot before, after;

	it_call(&d, "PUT", "/v1/layers/huge", "{\"num_features\": 1}", &r);
	it_response_finish(&r);
	it_call(&d, "PUT", "/v1/layers/huge/state", "{\"weight\": [3e38], \"running_var\": [1e-30]}", &r);
	CHECK(r.status == 200);
	it_response_finish(&r);
	it_snapshot_take(&d, "huge", &before);
	it_call(&d, "POST", "/v1/layers/huge/train", "{\"input\": [[0.0], [0.0], [0.0], [1000.0]]}", &r);
	it_check_problem(&r, 422, "non_finite_output", "train to a non-finite output");
	it_response_finish(&r);
	it_call(&d, "POST", "/v1/layers/huge/eval", "{\"input\": [[0.0], [0.0], [0.0], [1000.0]]}", &r);
	it_check_problem(&r, 422, "non_finite_output", "eval to a non-finite output");
	it_response_finish(&r);
	it_snapshot_take(&d, "huge", &after);
	CHECKF(it_snapshot_equal(&before, &after), "a refused non-finite step changed the layer");
	it_snapshot_finish(&before);
	it_snapshot_finish(&after);
}

static void test_bad_configs(void)
{
	static const struct { const char *body; long status; const char *code; } rows[] = {
		{ "{\"num_features\": 0}", 422, "invalid_config" },
		{ "{\"num_features\": -1}", 422, "invalid_config" },
		{ "{\"num_features\": 1.5}", 422, NULL },
		{ "{\"num_features\": 3.0}", 422, NULL },
		{ "{\"num_features\": 1000000000000}", 422, "invalid_config" },
		{ "{\"num_features\": 18446744073709551617}", 422, NULL },
		{ "{\"num_features\": 1e300}", 422, NULL },
		{ "{\"num_features\": \"3\"}", 422, NULL },
		{ "{\"num_features\": null}", 422, NULL },
		{ "{}", 422, NULL },
		{ "{\"num_features\": 3, \"eps\": 0}", 422, "invalid_config" },
		{ "{\"num_features\": 3, \"eps\": -1}", 422, "invalid_config" },
		{ "{\"num_features\": 3, \"eps\": \"a\"}", 422, NULL },
		{ "{\"num_features\": 3, \"eps\": null}", 422, NULL },
		{ "{\"num_features\": 3, \"momentum\": 1.5}", 422, "invalid_config" },
		{ "{\"num_features\": 3, \"momentum\": -0.1}", 422, "invalid_config" },
		{ "{\"num_features\": 3, \"momentum\": \"a\"}", 422, NULL },
		{ "{\"num_features\": 3, \"affine\": \"yes\"}", 422, NULL },
		{ "{\"num_features\": 3, \"affine\": 1}", 422, NULL },
		{ "{\"num_features\": 3, \"track_running_stats\": null}", 422, NULL },
		{ "{\"num_features\": 3, \"extra\": 1}", 422, "unknown_key" },
		{ "[3]", 422, NULL },
		{ "{\"num_features\": 3", 400, "invalid_json" },
		{ "", 400, "invalid_json" },
	};
	struct it_response r;

	it_call(&d, "GET", "/v1/layers", NULL, &r);
	char *list = r.body;
	r.body = NULL;
	it_response_finish(&r);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char what[128];

		snprintf(what, sizeof(what), "PUT config %s", rows[i].body);
		it_call(&d, "PUT", "/v1/layers/bc", rows[i].body, &r);
		it_check_problem(&r, rows[i].status, rows[i].code, what);
		it_response_finish(&r);
		it_call(&d, "GET", "/v1/layers/bc", NULL, &r);
		CHECKF(r.status == 404, "%s created the layer", what);
		it_response_finish(&r);
	}
	it_call(&d, "GET", "/v1/layers", NULL, &r);
	CHECKF(list && !strcmp(list, r.body), "bad configs changed the layer list");
	it_response_finish(&r);
	free(list);
	const char *text[] = { "Content-Type: text/plain", NULL };
	const char *cfg = "{\"num_features\": 3}";
	it_request(&d, "PUT", "/v1/layers/bc", text, cfg, strlen(cfg), &r);
	it_check_problem(&r, 415, "unsupported_media_type", "PUT config as text/plain");
	it_response_finish(&r);
}

/* A tensor over --max-elements is 413, in either form. */
static void test_element_cap(void)
{
	const size_t n = MAX_ELEMENTS / 3 + 1;
	size_t cap = n * 3 * 6 + 128, at = 0;
	char *body = malloc(cap);
	struct it_response r;

	if (!CHECK(body))
		return;
	at += (size_t)snprintf(body, cap, "{\"input\": {\"shape\": [%zu, 3], \"data\": [", n);
	for (size_t i = 0; i < n * 3; i++)
		at += (size_t)snprintf(body + at, cap - at, i ? ", %zu" : "%zu", i % 10);
	snprintf(body + at, cap - at, "]}}");
	struct it_snapshot before, after;
	it_snapshot_take(&d, "bad", &before);
	it_call(&d, "POST", "/v1/layers/bad/train", body, &r);
	it_check_problem(&r, 413, "too_large", "JSON over --max-elements");
	it_response_finish(&r);
	free(body);

	size_t shape[2] = { n, 3 }, len;
	float *data = calloc(n * 3, sizeof(float));
	void *npy = data ? it_npy_build("<f4", false, shape, 2, data, n * 3, &len) : NULL;
	if (CHECK(npy)) {
		const char *h[] = { "Content-Type: application/x-npy", NULL };
		it_request(&d, "POST", "/v1/layers/bad/eval", h, npy, len, &r);
		it_check_problem(&r, 413, "too_large", ".npy over --max-elements");
		it_response_finish(&r);
	}
	free(npy);
	free(data);
	it_snapshot_take(&d, "bad", &after);
	CHECKF(it_snapshot_equal(&before, &after), "an oversized tensor changed the layer");
	it_snapshot_finish(&before);
	it_snapshot_finish(&after);
}

static size_t gen_filler(char *buf, size_t size, void *ctx)
{
	size_t *left = ctx;
	size_t n = size < *left ? size : *left;

	memset(buf, ' ', n);
	*left -= n;
	return n;
}

/* 100 MB, announced by Content-Length, past a 64 MiB cap: 413, then the server still serves. */
static void test_huge_body(void)
{
	const size_t total = 100u * 1000 * 1000;
	size_t left = total;
	const char *h[] = { "Expect: 100-continue", NULL };
	struct it_response r;
	struct it_snapshot before, after;

	it_snapshot_take(&d, "bad", &before);
	it_request_gen(&d, "POST", "/v1/layers/bad/train", h, total, gen_filler, &left, &r);
	it_check_problem(&r, 413, "too_large", "a 100 MB body");
	it_response_finish(&r);
	/* The same without waiting for 100 Continue: the answer may come before the body is sent. */
	left = total;
	it_request_gen(&d, "POST", "/v1/layers/bad/eval", NULL, total, gen_filler, &left, &r);
	CHECKF(r.status == 413 || r.status == 0, "100 MB without Expect: status %ld", r.status);
	it_response_finish(&r);

	it_call(&d, "GET", "/readyz", NULL, &r);
	CHECKF(r.status == 200, "after a 413 /readyz answers %ld", r.status);
	it_response_finish(&r);
	it_call(&d, "POST", "/v1/layers/bad/eval", "{\"input\": [[1.0, 2.0, 3.0]]}", &r);
	CHECKF(r.status == 200, "after a 413 eval answers %ld", r.status);
	it_response_finish(&r);
	it_snapshot_take(&d, "bad", &after);
	CHECKF(after.status == 200 && it_snapshot_equal(&before, &after), "after a 413 GET fails or the layer changed");
	it_snapshot_finish(&before);
	it_snapshot_finish(&after);
}

/*
 * The layer is looked up before the body is read: an unknown layer is 404
 * whatever the headers say of the body (its type, its length past the
 * cap), on either store; a known one gets the headers' answer.
 */
static void test_unknown_layer_first(void)
{
	const char *xml[] = { "Content-Type: application/xml", NULL };
	const size_t total = 100u * 1000 * 1000;
	size_t left = total;
	const char *expect[] = { "Expect: 100-continue", NULL };
	struct it_response r;

	it_request(&d, "POST", "/v1/layers/nosuch/train", xml, "<x/>", 4, &r);
	it_check_problem(&r, 404, "not_found", "an unknown layer with an XML body");
	it_response_finish(&r);
	it_request_gen(&d, "POST", "/v1/layers/nosuch/eval", expect, total, gen_filler, &left, &r);
	it_check_problem(&r, 404, "not_found", "an unknown layer with a 100 MB body");
	it_response_finish(&r);
	it_request(&d, "POST", "/v1/layers/bad/eval", xml, "<x/>", 4, &r);
	it_check_problem(&r, 415, NULL, "a known layer with an XML body");
	it_response_finish(&r);
	left = total;
	it_request_gen(&d, "POST", "/v1/layers/bad/train", expect, total, gen_filler, &left, &r);
	it_check_problem(&r, 413, "too_large", "a known layer with a 100 MB body");
	it_response_finish(&r);
}

int main(int argc, char **argv)
{
	char elements[24];
	snprintf(elements, sizeof(elements), "%d", MAX_ELEMENTS);
	const char *args[] = { "--max-elements", elements, "--max-body-bytes", MAX_BODY, "--sync", "normal", NULL };
	void (*const tests[])(void) = {
		test_table, test_non_finite_output, test_bad_configs, test_element_cap, test_huge_body, test_unknown_layer_first, NULL,
	};

	return it_run(&d, "http_bad_input", argc, argv, args, tests);
}
