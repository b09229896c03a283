/*
 * test_float.c: lib/float.c against NumPy's table (tests/unit/float/cases.txt,
 * from generate.py) and against glibc over a sampled sweep of bit patterns.
 *
 *   test_float CASES [SAMPLES]
 *
 * The sweep formats SAMPLES float32 spread over all bit patterns (default
 * 2^22) and checks each: strtof reads it back to the same bits, bn_float_parse
 * does too, no decimal with one digit fewer reads back (so none shorter
 * does), and when glibc's correctly rounded decimal of the same length reads
 * back, the output is that one (the nearest). Every 16th sample runs the
 * slower checks.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/float.h"

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

static void check_format(uint32_t bits, const char *want)
{
	char out[BN_FLOAT_STR_MAX];
	size_t n = bn_float_format(from_bits(bits), out);

	if (strcmp(out, want) != 0 || n != strlen(want)) {
		fprintf(stderr, "format %08" PRIx32 ": got %s, want %s\n", bits, out, want);
		abort();
	}
}

static void check_parse(const char *s, const char *want)
{
	struct bn_error err = { 0 };
	float f = 12345.0f;
	int r = bn_float_parse(s, strlen(s), &f, &err);

	if (strcmp(want, "EBADMSG") == 0) {
		assert(r == -EBADMSG);
		assert(strcmp(err.code, BN_E_INVALID_JSON) == 0);
		assert(strstr(err.detail, "is not a JSON number"));
		assert(f == 12345.0f);
	} else if (strcmp(want, "EINVAL") == 0) {
		assert(r == -EINVAL);
		assert(strcmp(err.code, BN_E_OUT_OF_RANGE) == 0);
		assert(strstr(err.detail, "is beyond float32"));
		assert(f == 12345.0f);
	} else {
		uint32_t bits = (uint32_t)strtoul(want, NULL, 16);

		if (r != 0 || to_bits(f) != bits) {
			fprintf(stderr, "parse %s: got r=%d bits %08" PRIx32 ", want %s\n",
					s, r, to_bits(f), want);
			abort();
		}
	}
}

static void run_cases(const char *path)
{
	char line[4096], *kind, *a, *b, *save;
	FILE *f = fopen(path, "r");
	unsigned nf = 0, np = 0;

	assert(f);
	while (fgets(line, sizeof(line), f)) {
		assert(strchr(line, '\n'));
		if (line[0] == '#')
			continue;
		kind = strtok_r(line, " \n", &save);
		a = strtok_r(NULL, " \n", &save);
		b = strtok_r(NULL, " \n", &save);
		assert(kind && a && b);
		if (strcmp(kind, "F") == 0) {
			check_format((uint32_t)strtoul(a, NULL, 16), b);
			nf++;
		} else {
			assert(strcmp(kind, "P") == 0);
			check_parse(a, b);
			np++;
		}
	}
	fclose(f);
	assert(nf > 4000 && np > 8000);
	printf("cases: %u format, %u parse\n", nf, np);
}

/* Significant digits of a bn_float_format output, and whether it has an exponent. */
static int sig_digits(const char *s)
{
	int n = 0, started = 0, trailing = 0;

	for (; *s && *s != 'e'; s++) {
		if (*s < '0' || *s > '9')
			continue;
		if (*s != '0')
			started = 1;
		if (!started)
			continue;
		n++;
		trailing = *s == '0' ? trailing + 1 : 0;
	}
	return n - trailing;
}

static bool reads_back(const char *s, float v)
{
	return to_bits(strtof(s, NULL)) == to_bits(v);
}

/* No decimal of p digits reads back as v: neither neighbour of v at that precision. */
static void check_none_of_length(float v, int p)
{
	char buf[64], mant[32];
	long long m;
	int e;

	snprintf(buf, sizeof(buf), "%.*e", p - 1, (double)v);
	/* buf is d.ddde+XX: take the digits as an integer m and the exponent. */
	int j = 0;
	const char *x = buf;
	if (*x == '-')
		x++;
	for (; *x != 'e'; x++)
		if (*x != '.')
			mant[j++] = *x;
	mant[j] = '\0';
	m = strtoll(mant, NULL, 10);
	e = atoi(x + 1) - (p - 1);
	for (long long c = m - 1; c <= m + 1; c++) {
		snprintf(buf, sizeof(buf), "%s%llde%d", v < 0 ? "-" : "", c, e);
		if (c > 0 && reads_back(buf, v)) {
			fprintf(stderr, "%a: %s reads back with %d digits\n", (double)v, buf, p);
			abort();
		}
	}
}

static void check_value(uint32_t bits, bool slow)
{
	char out[BN_FLOAT_STR_MAX], glibc[64];
	float v = from_bits(bits), back;
	size_t n = bn_float_format(v, out);
	int digits;

	assert(n == strlen(out) && n < BN_FLOAT_STR_MAX);
	if (!reads_back(out, v)) {
		fprintf(stderr, "%08" PRIx32 ": %s does not read back\n", bits, out);
		abort();
	}
	assert(bn_float_parse(out, n, &back, NULL) == 0 && to_bits(back) == bits);
	if (!slow || v == 0)
		return;
	digits = sig_digits(out);
	assert(digits >= 1 && digits <= 9);
	if (digits > 1)
		check_none_of_length(v, digits - 1);
	snprintf(glibc, sizeof(glibc), "%.*e", digits - 1, (double)v);
	if (reads_back(glibc, v) && strtod(glibc, NULL) != strtod(out, NULL)) {
		fprintf(stderr, "%08" PRIx32 ": %s is not the nearest (%s)\n", bits, out, glibc);
		abort();
	}
}

static void sweep(uint64_t samples)
{
	/* An odd stride near 2^32 / samples visits every exponent and many mantissas. */
	uint64_t stride = ((UINT64_C(1) << 32) / samples) | 1;
	uint64_t n = 0;

	for (uint64_t b = 0; b < (UINT64_C(1) << 32); b += stride, n++) {
		uint32_t bits = (uint32_t)b;

		if ((bits >> 23 & 0xff) == 0xff)
			continue;
		check_value(bits, n % 16 == 0);
	}
	/* The ends of every binade, where the interval is lopsided. */
	for (uint32_t e = 0; e < 255; e++) {
		for (uint32_t m = 0; m < 4; m++) {
			check_value(e << 23 | m, true);
			check_value(e << 23 | (0x7fffff - m), true);
			check_value(0x80000000u | e << 23 | m, true);
		}
	}
	printf("sweep: %" PRIu64 " values\n", n);
}

static void check_spelling(void)
{
	char out[BN_FLOAT_STR_MAX];

	/* The cases the format must spell exactly as Python's repr. */
	check_format(to_bits(1.0f), "1.0");
	check_format(to_bits(-0.99998f), "-0.99998");
	check_format(to_bits(0.4976808f), "0.4976808");
	check_format(to_bits(1e-5f), "1e-05");
	check_format(to_bits(1.5e-7f), "1.5e-07");
	check_format(to_bits(FLT_MAX), "3.4028235e+38");
	check_format(to_bits(-0.0f), "-0.0");
	check_format(to_bits(1e16f), "1e+16");
	check_format(to_bits(1e15f), "1000000000000000.0");
	check_format(to_bits(0.0001f), "0.0001");
	check_format(to_bits(0.00001234f), "1.234e-05");
	check_format(to_bits(123456789.0f), "123456790.0");
	check_format(to_bits(FLT_MIN), "1.1754944e-38");
	check_format(1, "1e-45");
	check_format(to_bits(100.0f), "100.0");
	check_format(to_bits(12.5f), "12.5");
	/* Not JSON, but named. */
	assert(bn_float_format(NAN, out) == 3 && strcmp(out, "NaN") == 0);
	assert(bn_float_format(INFINITY, out) == 8 && strcmp(out, "Infinity") == 0);
	assert(bn_float_format(-INFINITY, out) == 9 && strcmp(out, "-Infinity") == 0);
}

static void check_parse_errors(void)
{
	struct bn_error err = { 0 };
	float f = 7.0f;
	char big[400];

	/* Only s[0..len) is read: what follows does not matter. */
	assert(bn_float_parse("1.5]", 3, &f, &err) == 0 && f == 1.5f);
	assert(bn_float_parse("12", 1, &f, &err) == 0 && f == 1.0f);
	f = 7.0f;
	assert(bn_float_parse("", 0, &f, &err) == -EBADMSG && f == 7.0f);
	assert(strcmp(err.detail, "'' is not a JSON number") == 0);
	assert(bn_float_parse("+1", 2, &f, &err) == -EBADMSG);
	assert(strcmp(err.code, BN_E_INVALID_JSON) == 0);
	assert(strcmp(err.detail, "'+1' is not a JSON number") == 0);
	assert(bn_float_parse("1e39", 4, &f, &err) == -EINVAL && f == 7.0f);
	assert(strcmp(err.code, BN_E_OUT_OF_RANGE) == 0);
	assert(strcmp(err.detail, "value 1e39 is beyond float32") == 0);
	assert(bn_float_parse("-3.5e38", 7, &f, &err) == -EINVAL);
	assert(strcmp(err.detail, "value -3.5e38 is beyond float32") == 0);
	/* A long number is quoted shortened. */
	memset(big, '9', sizeof(big));
	assert(bn_float_parse(big, sizeof(big), &f, &err) == -EINVAL);
	assert(strcmp(err.detail, "value 9999999999999999999999999999999999999999... is beyond float32") == 0);
	/* The error struct is optional. */
	assert(bn_float_parse("x", 1, &f, NULL) == -EBADMSG);
	/* Long inputs that land next to a midpoint take the exact path. */
	snprintf(big, sizeof(big), "1.000000059604644775390625%0300d1", 0);
	assert(bn_float_parse(big, strlen(big), &f, &err) == 0 && f == nextafterf(1.0f, 2.0f));
	big[26] = '\0';
	assert(bn_float_parse(big, strlen(big), &f, &err) == 0 && f == 1.0f);
	/* Underflow is zero with its sign, as strtof gives. */
	assert(bn_float_parse("-1e-50", 6, &f, &err) == 0 && f == 0 && signbit(f));
}

int main(int argc, char **argv)
{
	uint64_t samples = UINT64_C(1) << 22;

	assert(argc >= 2);
	if (argc >= 3)
		samples = strtoull(argv[2], NULL, 10);
	assert(samples > 0);
	check_spelling();
	check_parse_errors();
	run_cases(argv[1]);
	sweep(samples);
	return 0;
}
