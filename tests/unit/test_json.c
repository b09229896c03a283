/*
 * test_json.c: the body reader of lib/json_read.c and lib/json_body.c (every refusal with its errno, code
 * and exact detail; both forms; depth; caps) and the writers of lib/json_write.c.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/json.h"

#define MAX 1000

struct refusal {
	const char *body;
	int r;
	const char *code;
	const char *detail;
};

static const struct refusal refusals[] = {
	/* Not JSON at all: 400, whatever else is wrong. */
	{ "", -EBADMSG, BN_E_INVALID_JSON, "invalid JSON at byte 0: expected a value, got the end of the body" },
	{ "{\"input\": [[1, 2]]} x", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 20: expected the end of the body after the value, got 'x'" },
	{ "{\"input\": [[1, 2]]", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 18: expected ',' or '}', got the end of the body" },
	{ "{\"input\": [[1, 2],]}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 18: expected a value, got ']'" },
	{ "{\"input\": [[1 2]]}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 14: expected ',' or ']', got '2'" },
	{ "{\"input\": [[NaN]]}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 12: NaN and Infinity are not JSON; a tensor holds finite numbers only" },
	{ "{\"input\": [[1, -Infinity]]}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 15: NaN and Infinity are not JSON; a tensor holds finite numbers only" },
	{ "{\"input\": [[Infinity]]}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 12: NaN and Infinity are not JSON; a tensor holds finite numbers only" },
	{ "{\"input\": [[01]]}", -EBADMSG, BN_E_INVALID_JSON, "invalid JSON at byte 12: 01 is not a JSON number" },
	{ "{\"input\": [[+1]]}", -EBADMSG, BN_E_INVALID_JSON, "invalid JSON at byte 12: +1 is not a JSON number" },
	{ "{\"input\": [[.5]]}", -EBADMSG, BN_E_INVALID_JSON, "invalid JSON at byte 12: .5 is not a JSON number" },
	{ "{\"input\": [[5.]]}", -EBADMSG, BN_E_INVALID_JSON, "invalid JSON at byte 12: 5. is not a JSON number" },
	{ "{\"input\": [[0x1]]}", -EBADMSG, BN_E_INVALID_JSON, "invalid JSON at byte 13: expected ',' or ']', got 'x'" },
	{ "{\"input\": [[tru]]}", -EBADMSG, BN_E_INVALID_JSON, "invalid JSON at byte 12: expected a value, got 't'" },
	{ "{'input': [[1]]}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 1: expected '\"' to start a key, got '''" },
	{ "{\"input\" [[1]]}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 9: expected ':' after the key, got '['" },
	{ "{\"input\": [[1]], \"k\": \"a\x01\"}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 24: expected a string character (control characters must be escaped), got byte 0x01" },
	{ "{\"input\": [[1]], \"k\": \"\\x\"}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 24: expected an escape character (one of \"\\/bfnrtu), got 'x'" },
	{ "{\"input\": [[1]], \"k\": \"\\u12g4\"}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 27: expected four hex digits after \\u, got 'g'" },
	{ "{\"input\": [[1]], \"k\": \"\xc3\x28\"}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 23: a string is not valid UTF-8" },
	{ "{\"input\": [[1]], \"k\": \"\xed\xa0\x80\"}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 23: a string is not valid UTF-8" },
	{ "{\"input\": [[1]], \"k\": \"abc", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 26: expected '\"' to close the string, got the end of the body" },
	/* A semantic error first, then broken JSON: the broken JSON is what is reported. */
	{ "{\"input\": [[1, \"a\"]], \"x\": [1, 2}", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 32: expected ',' or ']', got '}'" },
	{ "{\"input\": 5, \"x\": }", -EBADMSG, BN_E_INVALID_JSON,
		"invalid JSON at byte 18: expected a value, got '}'" },

	/* JSON, but not a tensor body: 422, the first problem. */
	{ "[1]", -EINVAL, BN_E_WRONG_TYPE, "the body must be an object {\"input\": ...}, got an array" },
	{ "{}", -EINVAL, BN_E_MISSING_INPUT, "the body has no \"input\" key" },
	{ "{\"Input\": [[1]]}", -EINVAL, BN_E_UNKNOWN_KEY, "unknown key \"Input\"; expected \"input\"" },
	{ "{\"input\": [[1]], \"extra\": {\"a\": [1, {}]}}", -EINVAL, BN_E_UNKNOWN_KEY,
		"unknown key \"extra\"; expected \"input\"" },
	{ "{\"input\": [[1]], \"input\": [[2]]}", -EINVAL, BN_E_UNKNOWN_KEY, "duplicate key \"input\"" },
	{ "{\"input\": [[1]], \"\\u0069nput\": [[2]]}", -EINVAL, BN_E_UNKNOWN_KEY, "duplicate key \"input\"" },
	{ "{\"input\": \"x\"}", -EINVAL, BN_E_WRONG_TYPE,
		"input: expected nested arrays or {\"shape\": [...], \"data\": [...]}, got a string" },
	{ "{\"input\": null}", -EINVAL, BN_E_WRONG_TYPE,
		"input: expected nested arrays or {\"shape\": [...], \"data\": [...]}, got null" },
	{ "{\"input\": 5}", -EINVAL, BN_E_BAD_RANK, "input: expected a tensor of rank 1 to 5, got a number (rank 0)" },
	{ "{\"input\": [[[1, 2, 3], [4, 5, 6]], [[7, \"8\", 9], [1, 2, 3]]]}", -EINVAL, BN_E_WRONG_TYPE,
		"input[1][0][1]: expected a number, got a string" },
	{ "{\"input\": [[1, null]]}", -EINVAL, BN_E_WRONG_TYPE, "input[0][1]: expected a number, got null" },
	{ "{\"input\": [[1, true]]}", -EINVAL, BN_E_WRONG_TYPE, "input[0][1]: expected a number, got true" },
	{ "{\"input\": [[1, {}]]}", -EINVAL, BN_E_WRONG_TYPE, "input[0][1]: expected a number, got an object" },
	{ "{\"input\": [[1], \"x\"]}", -EINVAL, BN_E_WRONG_TYPE, "input[1]: expected an array, got a string" },
	{ "{\"input\": [[1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5], [1, 2, 3, 4]]}", -EINVAL,
		BN_E_RAGGED, "input: ragged array, row 3 has 4 elements, row 0 has 5" },
	{ "{\"input\": [[1, 2], [3, 4, 5]]}", -EINVAL, BN_E_RAGGED,
		"input: ragged array, row 1 has 3 elements, row 0 has 2" },
	{ "{\"input\": [[[1], [2]], [[3], [4, 5]]]}", -EINVAL, BN_E_RAGGED,
		"input[1]: ragged array, row 1 has 2 elements, row 0 has 1" },
	{ "{\"input\": [[[1, 2]], [[3]]]}", -EINVAL, BN_E_RAGGED,
		"input[1]: ragged array, row 0 has 1 element, earlier rows have 2" },
	{ "{\"input\": [[1, 2], 3]}", -EINVAL, BN_E_RAGGED,
		"input: ragged array, element 1 is a number, where other rows hold arrays" },
	{ "{\"input\": [[1, [2]]]}", -EINVAL, BN_E_RAGGED,
		"input[0]: ragged array, element 1 is an array, where other rows hold numbers" },
	{ "{\"input\": [[1, 1e39]]}", -EINVAL, BN_E_OUT_OF_RANGE, "input[0][1]: value 1e39 is beyond float32" },
	{ "{\"input\": [[1, -3.5e38]]}", -EINVAL, BN_E_OUT_OF_RANGE, "input[0][1]: value -3.5e38 is beyond float32" },
	{ "{\"input\": [[[[[[1]]]]]]}", -EINVAL, BN_E_BAD_RANK,
		"input[0][0][0][0][0]: arrays nested deeper than 5 levels; a tensor has rank 1 to 5" },
	{ "{\"input\": []}", -EINVAL, BN_E_EMPTY_DIMENSION, "input: empty array; no dimension may be 0" },
	{ "{\"input\": [[1], []]}", -EINVAL, BN_E_EMPTY_DIMENSION, "input[1]: empty array; no dimension may be 0" },
	{ "{\"input\": [[[]]]}", -EINVAL, BN_E_EMPTY_DIMENSION, "input[0][0]: empty array; no dimension may be 0" },

	/* The shaped form. */
	{ "{\"input\": {\"shape\": [2, 3], \"data\": [1, 2, 3, 4, 5]}}", -EINVAL, BN_E_SHAPE_MISMATCH,
		"shape [2, 3] has 6 elements, data has 5" },
	{ "{\"input\": {\"data\": [1, 2, 3, 4, 5, 6, 7], \"shape\": [2, 3]}}", -EINVAL, BN_E_SHAPE_MISMATCH,
		"shape [2, 3] has 6 elements, data has 7" },
	{ "{\"input\": {\"shape\": [2, 3], \"data\": [1, 2, 3, 4, 5, 6, 7, 8, 9]}}", -EINVAL,
		BN_E_SHAPE_MISMATCH, "shape [2, 3] has 6 elements, data has 9" },
	{ "{\"input\": {\"shape\": [1000, 1000], \"data\": [1]}}", -E2BIG, BN_E_TOO_LARGE,
		"input.shape has more than 1000 elements" },
	{ "{\"input\": {\"shape\": [4294967296, 4294967296, 4294967296], \"data\": [1]}}", -E2BIG,
		BN_E_TOO_LARGE, "input.shape has more than 1000 elements" },
	{ "{\"input\": {\"shape\": [99999999999999999999999], \"data\": [1]}}", -E2BIG, BN_E_TOO_LARGE,
		"input.shape[0] is larger than 1000 elements" },
	{ "{\"input\": {\"shape\": [2, 0], \"data\": [1]}}", -EINVAL, BN_E_EMPTY_DIMENSION,
		"input.shape[1] is 0; no dimension may be 0" },
	{ "{\"input\": {\"shape\": [2, -3], \"data\": [1]}}", -EINVAL, BN_E_WRONG_TYPE,
		"input.shape[1]: expected a positive integer, got -3" },
	{ "{\"input\": {\"shape\": [2.0], \"data\": [1, 2]}}", -EINVAL, BN_E_WRONG_TYPE,
		"input.shape[0]: expected a positive integer, got 2.0" },
	{ "{\"input\": {\"shape\": [1e1], \"data\": [1]}}", -EINVAL, BN_E_WRONG_TYPE,
		"input.shape[0]: expected a positive integer, got 1e1" },
	{ "{\"input\": {\"shape\": [\"2\"], \"data\": [1, 2]}}", -EINVAL, BN_E_WRONG_TYPE,
		"input.shape[0]: expected a positive integer, got a string" },
	{ "{\"input\": {\"shape\": [], \"data\": [1]}}", -EINVAL, BN_E_BAD_RANK,
		"input.shape is empty (rank 0); a tensor has rank 1 to 5" },
	{ "{\"input\": {\"shape\": [1, 1, 1, 1, 1, 1], \"data\": [1]}}", -EINVAL, BN_E_BAD_RANK,
		"input.shape has more than 5 dimensions; a tensor has rank 1 to 5" },
	{ "{\"input\": {\"shape\": 6, \"data\": [1]}}", -EINVAL, BN_E_WRONG_TYPE,
		"input.shape: expected an array of dimensions, got a number" },
	{ "{\"input\": {\"shape\": [1], \"data\": {}}}", -EINVAL, BN_E_WRONG_TYPE,
		"input.data: expected an array of numbers, got an object" },
	{ "{\"input\": {\"shape\": [2], \"data\": [1, [2]]}}", -EINVAL, BN_E_WRONG_TYPE,
		"input.data[1]: expected a number, got an array" },
	{ "{\"input\": {\"shape\": [2], \"data\": [1, 1e40]}}", -EINVAL, BN_E_OUT_OF_RANGE,
		"input.data[1]: value 1e40 is beyond float32" },
	{ "{\"input\": {\"shape\": [1], \"data\": []}}", -EINVAL, BN_E_EMPTY_DIMENSION,
		"input.data is empty; no dimension may be 0" },
	{ "{\"input\": {\"shape\": [2]}}", -EINVAL, BN_E_MISSING_INPUT,
		"input: missing \"data\"; expected {\"shape\": [...], \"data\": [...]}" },
	{ "{\"input\": {\"data\": [1, 2]}}", -EINVAL, BN_E_MISSING_INPUT,
		"input: missing \"shape\"; expected {\"shape\": [...], \"data\": [...]}" },
	{ "{\"input\": {\"shape\": [2], \"data\": [1, 2], \"dtype\": \"f4\"}}", -EINVAL, BN_E_UNKNOWN_KEY,
		"unknown key \"dtype\" in input; expected \"shape\" and \"data\"" },
	{ "{\"input\": {\"shape\": [2], \"shape\": [2], \"data\": [1, 2]}}", -EINVAL, BN_E_UNKNOWN_KEY,
		"duplicate key \"shape\"" },
	{ "{\"input\": {\"data\": [1], \"shape\": [1], \"data\": [1]}}", -EINVAL, BN_E_UNKNOWN_KEY,
		"duplicate key \"data\"" },
};

static void check_refusal(const struct refusal *c)
{
	struct bn_tensor t = { .rank = 99 };
	enum bn_tensor_form form = (enum bn_tensor_form)77;
	struct bn_error err = { 0 };
	int r = bn_json_input_parse(c->body, strlen(c->body), MAX, &t, &form, &err);

	if (r != c->r || strcmp(err.code, c->code) != 0 || strcmp(err.detail, c->detail) != 0) {
		fprintf(stderr, "body: %s\n got: %d %s: %s\nwant: %d %s: %s\n", c->body, r, err.code,
				err.detail, c->r, c->code, c->detail);
		abort();
	}
	assert(t.rank == 99 && t.data == NULL && form == (enum bn_tensor_form)77);
}

static void parse_ok(const char *body, size_t max, struct bn_tensor *t, enum bn_tensor_form *form)
{
	struct bn_error err = { 0 };
	int r = bn_json_input_parse(body, strlen(body), max, t, form, &err);

	if (r != 0) {
		fprintf(stderr, "body: %.200s\n got: %d %s: %s\n", body, r, err.code, err.detail);
		abort();
	}
}

/* body parses to a tensor that writes as want (in the body's own form). */
static void round_trip(const char *body, const char *want)
{
	struct bn_tensor t;
	enum bn_tensor_form form;
	struct bn_buf out;

	parse_ok(body, MAX, &t, &form);
	bn_buf_init(&out, 0);
	assert(bn_json_tensor_write(&out, &t, form) == 0);
	if (strcmp(out.data, want) != 0) {
		fprintf(stderr, "body: %s\n got: %s\nwant: %s\n", body, out.data, want);
		abort();
	}
	bn_buf_finish(&out);
	bn_tensor_finish(&t);
}

static void test_accepts(void)
{
	struct bn_tensor t;
	enum bn_tensor_form form;

	round_trip("{\"input\": [[1, 2], [3, 4]]}", "[[1.0, 2.0], [3.0, 4.0]]");
	round_trip(" \t\r\n{ \"input\" :\n[ [ 1 ,2 ] , [3,4 ] ] }\n ", "[[1.0, 2.0], [3.0, 4.0]]");
	round_trip("{\"input\": [1, 2.5, -0.0]}", "[1.0, 2.5, -0.0]");
	round_trip("{\"input\": [[[0.1, 0.2]], [[0.30000001192092896, 1e-45]]]}",
			"[[[0.1, 0.2]], [[0.3, 1e-45]]]");
	round_trip("{\"input\": [[[[[1]]]]]}", "[[[[[1.0]]]]]");
	round_trip("{\"input\": [[[[[1, 2]], [[3, 4]]]]]}", "[[[[[1.0, 2.0]], [[3.0, 4.0]]]]]");
	round_trip("{\"input\": {\"shape\": [2, 2], \"data\": [1, 2, 3, 4]}}",
			"{\"shape\": [2, 2], \"data\": [1.0, 2.0, 3.0, 4.0]}");
	round_trip("{\"input\": {\"data\": [1E2, -2e-3, 3.4028235e38], \"shape\": [3, 1]}}",
			"{\"shape\": [3, 1], \"data\": [100.0, -0.002, 3.4028235e+38]}");
	/* Keys with escapes are compared decoded; other keys' values may hold anything. */
	round_trip("{\"\\u0069np\\u0075t\": [[1]]}", "[[1.0]]");
	/* Underflow is zero, as strtof gives. */
	round_trip("{\"input\": [[1e-50, -1e-50]]}", "[[0.0, -0.0]]");

	parse_ok("{\"input\": [[1, 2, 3], [4, 5, 6]]}", MAX, &t, &form);
	assert(form == BN_FORM_NESTED && t.rank == 2 && t.shape[0] == 2 && t.shape[1] == 3 && t.count == 6);
	for (size_t i = 0; i < 6; i++)
		assert(t.data[i] == (float)(i + 1));
	bn_tensor_finish(&t);
	parse_ok("{\"input\": {\"shape\": [3, 2], \"data\": [6, 5, 4, 3, 2, 1]}}", MAX, &t, &form);
	assert(form == BN_FORM_SHAPED && t.rank == 2 && t.shape[0] == 3 && t.shape[1] == 2 && t.count == 6);
	assert(t.data[0] == 6.0f && t.data[5] == 1.0f);
	bn_tensor_finish(&t);
	/* Exactly at the cap is fine, one past it is not. */
	parse_ok("{\"input\": [[1, 2], [3, 4]]}", 4, &t, &form);
	bn_tensor_finish(&t);
	parse_ok("{\"input\": {\"shape\": [2, 2], \"data\": [1, 2, 3, 4]}}", 4, &t, &form);
	bn_tensor_finish(&t);
}

static void refuse_max(const char *body, size_t max, const char *detail)
{
	struct bn_tensor t;
	enum bn_tensor_form form;
	struct bn_error err = { 0 };

	assert(bn_json_input_parse(body, strlen(body), max, &t, &form, &err) == -E2BIG);
	assert(strcmp(err.code, BN_E_TOO_LARGE) == 0);
	if (strcmp(err.detail, detail) != 0) {
		fprintf(stderr, "got %s, want %s\n", err.detail, detail);
		abort();
	}
}

static void test_caps(void)
{
	refuse_max("{\"input\": [[1, 2], [3, 4], [5]]}", 4, "input has more than 4 elements");
	refuse_max("{\"input\": {\"shape\": [2, 3], \"data\": [1]}}", 5, "input.shape has more than 5 elements");
	refuse_max("{\"input\": {\"data\": [1, 2, 3, 4, 5, 6], \"shape\": [2, 3]}}", 5,
			"input.data has more than 5 elements");
	/* Too large, then broken: broken wins. */
	{
		const char *body = "{\"input\": [[1, 2], [3, 4], [5, x]]}";
		struct bn_tensor t;
		enum bn_tensor_form form;
		struct bn_error err;

		assert(bn_json_input_parse(body, strlen(body), 4, &t, &form, &err) == -EBADMSG);
	}
}

/* Nesting 100,000 deep costs a bit per level and no stack. */
static void test_depth(void)
{
	size_t depth = 100000, n = 0;
	char *body = malloc(2 * depth + 32);
	struct bn_tensor t;
	enum bn_tensor_form form;
	struct bn_error err;

	assert(body);
	n += (size_t)sprintf(body, "{\"input\": ");
	memset(body + n, '[', depth);
	n += depth;
	body[n++] = '1';
	memset(body + n, ']', depth);
	n += depth;
	body[n++] = '}';
	assert(bn_json_input_parse(body, n, MAX, &t, &form, &err) == -EINVAL);
	assert(strcmp(err.code, BN_E_BAD_RANK) == 0);
	/* One bracket short: not JSON, found at the very end. */
	assert(bn_json_input_parse(body, n - 2, MAX, &t, &form, &err) == -EBADMSG);
	assert(strcmp(err.code, BN_E_INVALID_JSON) == 0);
	/* Deep inside an unknown key, with objects and arrays interleaved. */
	n = (size_t)sprintf(body, "{\"input\": [[1]], \"x\": ");
	for (size_t i = 0; i < 1000; i++)
		n += (size_t)sprintf(body + n, "{\"a\": [");
	for (size_t i = 0; i < 1000; i++)
		n += (size_t)sprintf(body + n, "]}");
	body[n++] = '}';
	assert(bn_json_input_parse(body, n, MAX, &t, &form, &err) == -EINVAL);
	assert(strcmp(err.code, BN_E_UNKNOWN_KEY) == 0);
	free(body);
}

static uint64_t rng_state = 88172645463325252ull;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)rng_state;
}

/* Random finite bit patterns survive write then parse exactly, in both forms. */
static void test_random_round_trip(void)
{
	static const size_t shape[] = { 3, 4, 5, 6 };
	struct bn_tensor t, back;
	enum bn_tensor_form forms[] = { BN_FORM_NESTED, BN_FORM_SHAPED }, form;

	assert(bn_tensor_init(&t, 4, shape, MAX, NULL) == 0);
	for (size_t i = 0; i < t.count; i++) {
		uint32_t b;

		do
			b = rng();
		while ((b >> 23 & 0xff) == 0xff);
		memcpy(&t.data[i], &b, 4);
	}
	for (int f = 0; f < 2; f++) {
		struct bn_buf out;

		bn_buf_init(&out, 0);
		bn_buf_puts(&out, "{\"input\": ");
		assert(bn_json_tensor_write(&out, &t, forms[f]) == 0);
		bn_buf_puts(&out, "}");
		parse_ok(out.data, MAX, &back, &form);
		assert(form == forms[f] && back.rank == 4 && back.count == t.count);
		assert(memcmp(back.shape, t.shape, sizeof(t.shape)) == 0);
		assert(memcmp(back.data, t.data, t.count * sizeof(float)) == 0);
		bn_tensor_finish(&back);
		bn_buf_finish(&out);
	}
	bn_tensor_finish(&t);
}

static void test_writers(void)
{
	static const float v[] = { 0.5f, 1.0f };
	struct bn_buf out;

	bn_buf_init(&out, 0);
	assert(bn_json_floats_write(&out, v, 2) == 0 && strcmp(out.data, "[0.5, 1.0]") == 0);
	bn_buf_finish(&out);
	bn_buf_init(&out, 0);
	assert(bn_json_floats_write(&out, v, 0) == 0 && strcmp(out.data, "[]") == 0);
	bn_buf_finish(&out);
	/* The cap is hit exactly where the text passes it. */
	bn_buf_init(&out, 10);
	assert(bn_json_floats_write(&out, v, 2) == 0 && out.len == 10);
	bn_buf_finish(&out);
	bn_buf_init(&out, 9);
	assert(bn_json_floats_write(&out, v, 2) == -E2BIG && out.err == -E2BIG);
	bn_buf_finish(&out);

	bn_buf_init(&out, 0);
	assert(bn_json_string_write(&out, "a\"b\\c\n\x01\x1f\x7f") == 0);
	assert(strcmp(out.data, "\"a\\\"b\\\\c\\u000a\\u0001\\u001f\x7f\"") == 0);
	bn_buf_finish(&out);
	bn_buf_init(&out, 0);
	assert(bn_json_string_write(&out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == 0);
	assert(strcmp(out.data, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"") == 0);
	bn_buf_finish(&out);
	/* Bytes that are not UTF-8 become U+FFFD, so the output stays JSON. */
	bn_buf_init(&out, 0);
	assert(bn_json_string_write(&out, "a\xff" "b\xc3") == 0);
	assert(strcmp(out.data, "\"a\\ufffdb\\ufffd\"") == 0);
	bn_buf_finish(&out);
	bn_buf_init(&out, 0);
	assert(bn_json_string_write(&out, "") == 0 && strcmp(out.data, "\"\"") == 0);
	bn_buf_finish(&out);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
		check_refusal(&refusals[i]);
	test_accepts();
	test_caps();
	test_depth();
	test_random_round_trip();
	test_writers();
	return 0;
}
