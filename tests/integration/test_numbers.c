/*
 * test_numbers.c: numbers in config and state bodies are read as the numbers
 * they are.
 *
 * State values are rounded to float32 from their decimal text, correctly:
 * the cases are decimals just above the midpoint between two float32
 * neighbours, built here from random bit patterns (the exact decimal of the
 * midpoint with a 1 appended far past double precision). Read through a
 * double first they land on the midpoint itself and round to the even
 * neighbour, one ulp low. Integers past int64 are numbers too:
 * 100000000000000000000 is 1e20 for a state value, eps or momentum, judged
 * by the field's range, and num_batches_tracked keeps its 0..2^53 rule.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/buf.h"
#include "bn/json.h"
#include "harness.h"

#define MIDPOINTS 64

static struct it_daemon d;

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t next_u32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 32);
}

static float from_bits(uint32_t b)
{
	float f;

	memcpy(&f, &b, sizeof(f));
	return f;
}

/*
 * A decimal just above the midpoint between |v| and the next float32 up
 * (v's last significand bit clear, so a tie goes down to v), signed as v.
 */
static void above_midpoint(float v, char *out, size_t size)
{
	double lo = fabs((double)v), hi = (double)nextafterf(fabsf(v), INFINITY);
	double mid = (lo + hi) / 2; /* exact: 25 significant bits */
	char digits[200], *e;

	/* 120 digits hold the midpoint exactly (glibc prints it exactly); then a 1 past them. */
	snprintf(digits, sizeof(digits), "%.120e", mid);
	e = strchr(digits, 'e');
	snprintf(out, size, "%s%.*s1%s", signbit(v) ? "-" : "", (int)(e - digits), digits, e);
}

static long put(const char *method, const char *path, const char *body, struct it_response *r)
{
	it_response_finish(r);
	it_call(&d, method, path, body, r);
	return r->status;
}

/* Whether the GET /state body holds "key": [the shortest text of want[0..n)]. */
static bool state_has(const char *body, const char *key, const float *want, size_t n)
{
	struct bn_buf b;
	bool ok;

	bn_buf_init(&b, 0);
	bn_buf_printf(&b, "\"%s\": ", key);
	bn_json_floats_write(&b, want, n);
	ok = !b.err && strstr(body, b.data);
	if (!ok)
		fprintf(stderr, "  expected %s\n  in %s\n", b.err ? "?" : b.data, body);
	bn_buf_finish(&b);
	return ok;
}

static void test_midpoints(void)
{
	static float want[MIDPOINTS];
	struct it_response r = { 0 };
	struct bn_buf body;
	char text[256];
	long st;

	CHECK(put("PUT", "/v1/layers/mid", "{\"num_features\": 64}", &r) == 201);
	bn_buf_init(&body, 0);
	bn_buf_puts(&body, "{\"weight\": [");
	for (int i = 0; i < MIDPOINTS; i++) {
		/* Any finite float32 but the largest, normal or subnormal, with an even significand. */
		uint32_t bits = next_u32() & 0xfffffffe;
		float v;

		if ((bits >> 23 & 0xff) >= 0xfe)
			bits &= ~(UINT32_C(0x80) << 23);
		v = from_bits(bits);
		above_midpoint(v, text, sizeof(text));
		want[i] = signbit(v) ? -nextafterf(-v, INFINITY) : nextafterf(v, INFINITY);
		CHECKF(it_same_f32((float)strtod(text, NULL), v), "%s through a double is not 1 ulp low", text);
		bn_buf_printf(&body, "%s%s", i ? ", " : "", text);
	}
	bn_buf_puts(&body, "]}");
	CHECK(!body.err);
	st = put("PUT", "/v1/layers/mid/state", body.data, &r);
	CHECKF(st == 200, "PUT /state: %ld %s", st, r.body ? r.body : "");
	CHECK(put("GET", "/v1/layers/mid/state", NULL, &r) == 200);
	CHECKF(r.body && state_has(r.body, "weight", want, MIDPOINTS), "weights rounded correctly");
	bn_buf_finish(&body);
	it_response_finish(&r);
}

/* A refused body: status and code, the detail mentions what, nothing changed. */
static void refused(const char *method, const char *path, const char *body, long status,
		const char *code, const char *what)
{
	struct it_snapshot before, after;
	struct it_response r = { 0 };
	const char *detail;

	it_snapshot_take(&d, "big", &before);
	put(method, path, body, &r);
	it_check_problem(&r, status, code, body);
	detail = json_string_value(json_object_get(r.json, "detail"));
	CHECKF(detail && strstr(detail, what), "%s: the detail names %s: %s", body, what, r.body);
	it_snapshot_take(&d, "big", &after);
	CHECKF(it_snapshot_equal(&before, &after), "%s changed the layer", body);
	it_snapshot_finish(&before);
	it_snapshot_finish(&after);
	it_response_finish(&r);
}

static void test_big_integers(void)
{
	struct it_response r = { 0 };
	const float big[] = { 1e20f, -1.8446744073709552e19f };
	long st;

	CHECK(put("PUT", "/v1/layers/big", "{\"num_features\": 2}", &r) == 201);
	st = put("PUT", "/v1/layers/big_eps", "{\"num_features\": 2, \"eps\": 9223372036854775808}", &r);
	CHECKF(st == 201, "eps 2^63: %ld %s", st, r.body ? r.body : "");
	CHECKF(r.body && strstr(r.body, "\"eps\": 9.223372036854776e+18"), "eps 2^63 kept: %s", r.body ? r.body : "");
	st = put("PATCH", "/v1/layers/big", "{\"eps\": 100000000000000000000}", &r);
	CHECKF(st == 200, "eps 1e20 as an integer: %ld %s", st, r.body ? r.body : "");
	CHECKF(r.body && strstr(r.body, "\"eps\": 1e+20"), "eps 1e20 kept: %s", r.body ? r.body : "");
	/* A decimal just above a double midpoint (1 + 2^-53): strtod rounds it up, correctly. */
	CHECK(put("PATCH", "/v1/layers/big",
		"{\"eps\": 1.00000000000000011102230246251565404236316680908203125000001}", &r) == 200);
	CHECKF(r.body && strstr(r.body, "\"eps\": 1.0000000000000002"), "eps rounded up: %s", r.body ? r.body : "");

	st = put("PUT", "/v1/layers/big/state",
		"{\"weight\": [100000000000000000000, -18446744073709551616]}", &r);
	CHECKF(st == 200, "weights as long integers: %ld %s", st, r.body ? r.body : "");
	CHECK(put("GET", "/v1/layers/big/state", NULL, &r) == 200);
	CHECKF(r.body && state_has(r.body, "weight", big, 2), "1e20 and -2^64 stored");
	it_response_finish(&r);

	refused("PUT", "/v1/layers/big/state", "{\"bias\": [1000000000000000000000000000000000000000, 0]}",
		422, "out_of_range", "bias[0]");
	/* Below zero by its text, though it rounds to -0 in float32. */
	refused("PUT", "/v1/layers/big/state", "{\"running_var\": [-1e-50, 1.0]}",
		422, "invalid_state", "running_var[0]");
	refused("PUT", "/v1/layers/big/state", "{\"num_batches_tracked\": 18446744073709551616}",
		422, "out_of_range", "2^53");
	refused("PUT", "/v1/layers/big/state", "{\"num_batches_tracked\": 100000000000000000000}",
		422, "out_of_range", "num_batches_tracked");
	refused("PUT", "/v1/layers/big/state", "{\"num_batches_tracked\": 9007199254740993}",
		422, "out_of_range", "2^53");
	refused("PATCH", "/v1/layers/big", "{\"momentum\": 9223372036854775808}",
		422, "invalid_config", "momentum");
	refused("PATCH", "/v1/layers/big", "{\"momentum\": 100000000000000000000}",
		422, "invalid_config", "momentum");
	refused("PATCH", "/v1/layers/big", "{\"eps\": 1e400}", 422, "invalid_config", "eps");
	refused("PUT", "/v1/layers/big", "{\"num_features\": 18446744073709551616}",
		422, "invalid_config", "got 18446744073709551616");
	refused("PATCH", "/v1/layers/big", "{\"eps\": 0.5, \"eps\": 0.25}", 422, "unknown_key", "duplicate");
}

int main(int argc, char **argv)
{
	void (*const tests[])(void) = { test_midpoints, test_big_integers, NULL };

	return it_run(&d, "http_numbers", argc, argv, NULL, tests);
}
