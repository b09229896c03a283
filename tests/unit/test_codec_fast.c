/*
 * test_codec_fast.c: the fast paths of the codecs at their edges.
 *
 * The number reader takes eight digits at a time and converts through
 * double with an exact fallback; these cases are where that can go wrong:
 * float32 midpoints and numbers a hair either side of them, mantissas of
 * 19 digits and more, subnormals, the overflow boundary, digit runs that
 * end at every offset of an exact-length heap buffer (so a wide read past
 * the end shows under ASan and valgrind). Each is checked against glibc's
 * strtof, which rounds correctly (the first fast path is Eisel-Lemire,
 * then a double-precision one, then strtof). Then bn_float_parse_run's
 * stops, bn_float_format_list against
 * bn_float_format, the JSON writer's per-run room against its cap, the
 * tensor reader's runs of numbers against its one-number-at-a-time path,
 * and the .npy finite check at the edges of its chunks.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/float.h"
#include "bn/json.h"
#include "bn/npy.h"

static uint64_t rng = 0x243f6a8885a308d3ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static float from_bits(uint32_t b)
{
	float f;

	memcpy(&f, &b, sizeof(f));
	return f;
}

static uint32_t to_bits(float f)
{
	uint32_t b;

	memcpy(&b, &f, sizeof(b));
	return b;
}

/* s parses (from an exact-length heap copy) to what strtof says, or is refused as beyond float32. */
static void same_as_strtof(const char *s)
{
	size_t len = strlen(s), used = 0;
	char *copy = malloc(len ? len : 1);
	float want = strtof(s, NULL), got = 0, pre = 0;
	int r, rp;

	assert(copy);
	memcpy(copy, s, len);
	r = bn_float_parse(copy, len, &got, NULL);
	rp = bn_float_parse_prefix(copy, len, &pre, &used, NULL);
	if (isinf(want)) {
		if (r != -EINVAL || rp != -EINVAL) {
			fprintf(stderr, "%s: want -EINVAL, got %d and %d\n", s, r, rp);
			abort();
		}
	} else if (r != 0 || to_bits(got) != to_bits(want) || rp != 0 || used != len ||
			to_bits(pre) != to_bits(want)) {
		fprintf(stderr, "%s: want %08" PRIx32 ", got %d %08" PRIx32 ", prefix %d %zu %08" PRIx32 "\n",
				s, to_bits(want), r, to_bits(got), rp, used, to_bits(pre));
		abort();
	}
	free(copy);
}

/* Midpoints between neighbouring floats, and the doubles either side of them. */
static void test_midpoints(void)
{
	char s[128];

	for (int i = 0; i < 20000; i++) {
		uint32_t bits = (uint32_t)next() % 0x7f7fffff; /* finite, below FLT_MAX */
		double lo = from_bits(bits), hi = from_bits(bits + 1), mid = (lo + hi) / 2;

		/* A midpoint of floats is exact in double, and %.*e prints a double exactly with enough digits. */
		snprintf(s, sizeof(s), "%.60e", mid);
		same_as_strtof(s);
		snprintf(s, sizeof(s), "%.17g", nextafter(mid, 0));
		same_as_strtof(s);
		snprintf(s, sizeof(s), "%.17g", nextafter(mid, INFINITY));
		same_as_strtof(s);
		snprintf(s, sizeof(s), "-%.25g", mid);
		same_as_strtof(s);
	}
	/* Ties go to even: 1 + 2^-24 is halfway between 1 and the next float. */
	same_as_strtof("1.000000059604644775390625");
	same_as_strtof("1.0000000596046447753906250000000000000001");
	same_as_strtof("1.0000000596046447753906249999999999999999");
	same_as_strtof("1.000000178813934326171875"); /* halfway above an odd mantissa: rounds up */
}

/* Mantissas past 19 digits: the 20th and later digits only scale or are dropped. */
static void test_long_mantissas(void)
{
	char s[256];

	for (int i = 0; i < 20000; i++) {
		int ndig = 17 + (int)(next() % 40), point = (int)(next() % (uint64_t)(ndig + 1));
		size_t n = 0;

		if (next() & 1)
			s[n++] = '-';
		for (int d = 0; d < ndig; d++) {
			if (d == point && d)
				s[n++] = '.';
			s[n++] = (char)('0' + (d == 0 ? 1 + next() % 9 : next() % 10));
		}
		n += (size_t)snprintf(s + n, sizeof(s) - n, "e%d", (int)(next() % 90) - 60);
		same_as_strtof(s);
	}
	same_as_strtof("12345678901234567890123456789");
	same_as_strtof("0.000000000000000000000000000000000000000000000000000000001234567890123456789");
	same_as_strtof("340282356779733661637539395458142568447.99999");  /* just under the overflow tie */
	same_as_strtof("9999999999999999999");
	same_as_strtof("10000000000000000000");
}

/* Subnormals and the bottom of the range go to the exact path. */
static void test_subnormals(void)
{
	char s[128];

	for (int i = 0; i < 5000; i++) {
		float f = from_bits((uint32_t)(next() % 0x00800000));

		snprintf(s, sizeof(s), "%.9g", (double)f);
		same_as_strtof(s);
		snprintf(s, sizeof(s), "%.3g", (double)f);
		same_as_strtof(s);
	}
	same_as_strtof("1.401298464324817e-45");   /* the smallest subnormal */
	same_as_strtof("7.006492321624085e-46");   /* half of it: a tie, to zero */
	same_as_strtof("7.006492321624086e-46");   /* just above half: the smallest */
	same_as_strtof("1.1754942e-38");           /* the largest subnormal */
	same_as_strtof("1.17549435e-38");          /* FLT_MIN */
	same_as_strtof("1e-46");
	same_as_strtof("-1e-400");
}

/* The top of the range: FLT_MAX, the tie above it (to infinity), and beyond. */
static void test_overflow(void)
{
	same_as_strtof("3.4028235e38");
	same_as_strtof("3.40282356779733661637539395458142568448e38"); /* the tie: infinity */
	same_as_strtof("3.40282356779733661637539395458142568447e38");
	same_as_strtof("3.5e38");
	same_as_strtof("1e39");
	same_as_strtof("-1e40");
	same_as_strtof("1e1000000000000");
	same_as_strtof("0e1000000000000");
	same_as_strtof("1e-1000000000000");
}

/* Runs of 1 to 40 digits, before and after the point, ending at every offset of the buffer. */
static void test_digit_runs(void)
{
	char s[128];

	for (int a = 1; a <= 40; a++) {
		for (int b = 0; b <= 40; b += (b < 20 ? 1 : 7)) {
			size_t n = 0;

			s[n++] = (char)('1' + a % 9);
			for (int i = 1; i < a; i++)
				s[n++] = (char)('0' + (a * 7 + i) % 10);
			if (b) {
				s[n++] = '.';
				for (int i = 0; i < b; i++)
					s[n++] = (char)('0' + (b * 3 + i) % 10);
			}
			s[n] = '\0';
			if (a < 39)
				same_as_strtof(s);
			if (n + 4 < sizeof(s)) {
				memcpy(s + n, "e-30", 5);
				same_as_strtof(s);
			}
		}
		/* Zeros after the point before the first digit. */
		snprintf(s, sizeof(s), "0.%0*d%d", a, 0, a);
		same_as_strtof(s);
	}
}

/* What the one-pass reader takes as a number's end, and what it refuses. */
static void test_prefix(void)
{
	static const struct { const char *s; size_t used; float f; } ok[] = {
		{ "1.5]", 3, 1.5f }, { "1.", 1, 1.0f }, { "01", 1, 0.0f }, { "1e", 1, 1.0f },
		{ "1e+", 1, 1.0f }, { "1.5e3x", 5, 1500.0f }, { "-0.0,", 4, -0.0f },
		{ "12345678,", 8, 12345678.0f }, { "123456789012,", 12, 123456789012.0f },
		{ "2E-3 ", 4, 2e-3f }, { "0.12345678901234567890]", 22, 0.12345678901234567890f },
	};
	static const char *const bad[] = { "", "-", "+1", ".5", "-.5", "x", "-Infinity", "NaN", " 1" };
	struct bn_error err = { 0 };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t used = 99;
		float f = 7;

		assert(bn_float_parse_prefix(ok[i].s, strlen(ok[i].s), &f, &used, &err) == 0);
		assert(used == ok[i].used && to_bits(f) == to_bits(ok[i].f));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t used = 99;
		float f = 7;

		assert(bn_float_parse_prefix(bad[i], strlen(bad[i]), &f, &used, &err) == -EBADMSG);
		assert(used == 99 && f == 7 && strcmp(err.code, BN_E_INVALID_JSON) == 0);
	}
	assert(bn_float_parse_prefix("1e39,", 5, &(float){ 0 }, &(size_t){ 0 }, &err) == -EINVAL);
	assert(strcmp(err.detail, "value 1e39 is beyond float32") == 0);
}

/* A run stops before whatever it does not take, and says how far it read. */
static void test_parse_run(void)
{
	static const struct { const char *s; size_t room, n, used; } cases[] = {
		{ "1, 2, 3]", 9, 3, 7 }, { "1,2", 9, 1, 1 }, { "1, 2e39, 3", 9, 1, 1 },
		{ "1, 1.e5", 9, 1, 1 }, { "1, ", 9, 1, 1 }, { ", 1", 9, 0, 0 }, { "1, 2, 3", 2, 2, 4 },
		{ "1, \n2", 9, 1, 1 }, { "-0.5, -Infinity", 9, 1, 4 }, { "01, 2", 9, 0, 0 },
		{ "1.5e3, 2.25, 0.0001]]", 9, 3, 19 }, { "", 9, 0, 0 }, { "7", 0, 0, 0 },
	};
	float out[9], want;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t used = 99, n = bn_float_parse_run(cases[i].s, strlen(cases[i].s), out, cases[i].room, &used);

		if (n != cases[i].n || used != cases[i].used) {
			fprintf(stderr, "run '%s': got %zu, %zu\n", cases[i].s, n, used);
			abort();
		}
	}
	assert(bn_float_parse_run("1.5e3, 2.25, 0.0001", 19, out, 9, &(size_t){ 0 }) == 3);
	assert(out[0] == 1500.0f && out[1] == 2.25f);
	assert(bn_float_parse("0.0001", 6, &want, NULL) == 0 && to_bits(out[2]) == to_bits(want));
}

/* The list writer is bn_float_format joined with ", ". */
static void test_format_list(void)
{
	float v[600];
	char *list = malloc(sizeof(v) / sizeof(v[0]) * BN_FLOAT_LIST_ROOM + 2), *end;
	char one[BN_FLOAT_STR_MAX], want[sizeof(v) / sizeof(v[0]) * BN_FLOAT_LIST_ROOM + 2];
	size_t n = sizeof(v) / sizeof(v[0]), len = 0;

	assert(list);
	for (size_t i = 0; i < n; i++) {
		uint32_t bits = (uint32_t)next();

		v[i] = (bits >> 23 & 0xff) == 0xff ? (float)i : from_bits(bits);
	}
	v[0] = 0.0f, v[1] = -0.0f, v[2] = FLT_MAX, v[3] = -FLT_MIN, v[4] = from_bits(1);
	v[5] = 1e16f, v[6] = 1e15f, v[7] = 123456789.0f, v[8] = 0.0001f, v[9] = 0.00001f;
	for (size_t i = 0; i < n; i++) {
		if (i)
			memcpy(want + len, ", ", 2), len += 2;
		len += bn_float_format(v[i], one);
		memcpy(want + len - strlen(one), one, strlen(one));
	}
	end = bn_float_format_list(list, v, n, true);
	assert((size_t)(end - list) == len && memcmp(list, want, len) == 0);
	end = bn_float_format_list(list, v, 2, false);
	*end = '\0';
	assert(strcmp(list, ", 0.0, -0.0") == 0);
	assert(bn_float_format_list(list, v, 0, true) == list);
	free(list);
}

/* The JSON writer fills its reserved room a run at a time, yet fails only when the text passes the cap. */
static void test_writer_cap(void)
{
	size_t shape[2] = { 37, 29 };
	struct bn_tensor t;
	struct bn_buf full, b;

	assert(bn_tensor_init(&t, 2, shape, 10000, NULL) == 0);
	for (size_t i = 0; i < t.count; i++)
		t.data[i] = from_bits((uint32_t)next() & 0xbf7fffff);
	bn_buf_init(&full, 0);
	assert(bn_json_tensor_write(&full, &t, BN_FORM_NESTED) == 0);
	for (size_t max = full.len - 40; max <= full.len + 40; max++) {
		bn_buf_init(&b, max);
		if (max >= full.len) {
			assert(bn_json_tensor_write(&b, &t, BN_FORM_NESTED) == 0);
			assert(b.len == full.len && memcmp(b.data, full.data, full.len) == 0);
		} else {
			assert(bn_json_tensor_write(&b, &t, BN_FORM_NESTED) == -E2BIG);
		}
		bn_buf_finish(&b);
	}
	bn_buf_finish(&full);
	bn_tensor_finish(&t);
}

/* A body written with varied separators reads back the same as the values one by one. */
static void test_runs(void)
{
	static const char *const seps[] = { ", ", ",", " ,", ",\n  ", ", \t", ",  " };
	struct bn_buf body;
	struct bn_tensor t;
	enum bn_tensor_form form;
	struct bn_error err = { 0 };
	float want[2000];

	for (int round = 0; round < 50; round++) {
		size_t n = 1 + next() % 2000;
		char num[40];

		bn_buf_init(&body, 0);
		bn_buf_puts(&body, "{\"input\": {\"shape\": [");
		bn_buf_printf(&body, "%zu], \"data\": [", n);
		for (size_t i = 0; i < n; i++) {
			double d = (double)(int64_t)next() / 9.3e17 * pow(10, (double)(next() % 20) - 10);

			snprintf(num, sizeof(num), next() & 1 ? "%.17g" : "%.9g", d);
			assert(bn_float_parse(num, strlen(num), &want[i], NULL) == 0);
			if (i)
				bn_buf_puts(&body, seps[next() % (sizeof(seps) / sizeof(seps[0]))]);
			bn_buf_puts(&body, num);
		}
		bn_buf_puts(&body, "]}}");
		assert(bn_json_input_parse(body.data, body.len, 1 << 20, &t, &form, &err) == 0);
		assert(t.count == n && memcmp(t.data, want, n * sizeof(float)) == 0);
		bn_tensor_finish(&t);
		/* The cap falls inside a run: refused, naming it. */
		if (n > 3) {
			assert(bn_json_input_parse(body.data, body.len, n - 2, &t, &form, &err) == -E2BIG);
			assert(strstr(err.detail, "more than"));
		}
		bn_buf_finish(&body);
	}
	/* A run broken by a value beyond float32, by a string and by a bad number names the place. */
	assert(bn_json_input_parse("{\"input\": [[1, 2, 3e38, 4e38, 5]]}", 34, 100, &t, &form, &err) == -EINVAL);
	assert(strcmp(err.detail, "input[0][3]: value 4e38 is beyond float32") == 0);
	assert(bn_json_input_parse("{\"input\": [[1, 2, \"x\"]]}", 24, 100, &t, &form, &err) == -EINVAL);
	assert(strcmp(err.detail, "input[0][2]: expected a number, got a string") == 0);
	assert(bn_json_input_parse("{\"input\": [[1, 2, 1.e5]]}", 25, 100, &t, &form, &err) == -EBADMSG);
	assert(strstr(err.detail, "1.e5 is not a JSON number"));
	assert(bn_json_input_parse("{\"input\": [[1, 2, -Infinity]]}", 30, 100, &t, &form, &err) == -EBADMSG);
	assert(strstr(err.detail, "NaN and Infinity are not JSON"));
	assert(bn_json_input_parse("{\"input\": {\"shape\": [2], \"data\": [1, 2, 3, 4]}}", 47, 100, &t, &form, &err) == -EINVAL);
	assert(strcmp(err.detail, "shape [2] has 2 elements, data has 4") == 0);
	assert(bn_json_input_parse("{\"input\": [[1, 2], [3, 4, 5]]}", 30, 100, &t, &form, &err) == -EINVAL);
	assert(strstr(err.detail, "ragged"));
}

/* A NaN or infinity anywhere, at the edges of the 1024-value chunks included, is found and named. */
static void test_npy_finite(void)
{
	static const size_t counts[] = { 1, 1023, 1024, 1025, 3000, 4096 };
	static const uint32_t bad[] = { 0x7fc00000, 0x7f800000, 0xff800000, 0x7f800001, 0xffffffff };

	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		size_t n = counts[c], at[] = { 0, n / 2, n - 1, 1023, 1024, 2047, 2048 };
		struct bn_tensor t, back;
		struct bn_buf file;
		struct bn_error err = { 0 };

		assert(bn_tensor_init(&t, 1, &n, n, NULL) == 0);
		for (size_t i = 0; i < n; i++)
			t.data[i] = from_bits((uint32_t)next() & 0xbf7fffff); /* finite */
		bn_buf_init(&file, 0);
		assert(bn_npy_write(&file, &t) == 0);
		assert(bn_npy_read(file.data, file.len, n, &back, &err) == 0);
		assert(memcmp(back.data, t.data, n * 4) == 0);
		bn_tensor_finish(&back);
		for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
			char want[96];
			uint32_t b = bad[k % (sizeof(bad) / sizeof(bad[0]))];
			unsigned char *p;

			if (at[k] >= n)
				continue;
			p = (unsigned char *)file.data + file.len - 4 * (n - at[k]);
			p[0] = (unsigned char)b, p[1] = (unsigned char)(b >> 8);
			p[2] = (unsigned char)(b >> 16), p[3] = (unsigned char)(b >> 24);
			/* A later bad value does not hide this one. */
			if (at[k] + 1 < n)
				memset(p + 4, 0xff, 4);
			assert(bn_npy_read(file.data, file.len, n, &back, &err) == -EINVAL);
			snprintf(want, sizeof(want), "value at flat index %zu is not finite (%s)", at[k],
					b & 0x7fffff ? "nan" : b >> 31 ? "-inf" : "inf");
			assert(strcmp(err.code, BN_E_NOT_FINITE) == 0 && strcmp(err.detail, want) == 0);
			memcpy(p, &t.data[at[k]], 4);
			if (at[k] + 1 < n)
				memcpy(p + 4, &t.data[at[k] + 1], 4);
		}
		bn_buf_finish(&file);
		bn_tensor_finish(&t);
	}
}

int main(void)
{
	test_prefix();
	test_parse_run();
	test_midpoints();
	test_long_mantissas();
	test_subnormals();
	test_overflow();
	test_digit_runs();
	test_format_list();
	test_writer_cap();
	test_runs();
	test_npy_finite();
	return 0;
}
