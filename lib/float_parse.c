/*
 * float_parse.c: JSON numbers to correctly rounded float32 (bn/float.h).
 *
 * One pass checks the JSON grammar and splits the number into its first 19
 * significant digits and a power of ten, taking up to eight digits at a
 * time where eight bytes remain (SWAR: one 64-bit load, a count of the
 * leading digit bytes, three multiplies for their value), so no caller
 * finds a number's end before reading it. The digits are scaled in double,
 * then rounded to float. The double is within a few of its own ulps of the
 * exact value, and a float32 rounding boundary (a midpoint between two
 * floats) is exactly representable in double, so unless the double lands
 * within that error of a midpoint, rounding it to float gives the correctly
 * rounded result. The rare cases that land near one, and results outside
 * the normal range (subnormals), go to strtof_l in the C locale, which is
 * exact.
 */
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bn/float.h"

static locale_t c_locale;
static pthread_once_t locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* Powers of ten as doubles: exact up to 1e22, correctly rounded above. */
static const double pow10_dbl[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
	1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29,
	1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39,
	1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47, 1e48, 1e49,
};

static void quote(struct bn_error *err, const char *code, const char *fmt_head,
		const char *s, size_t len, const char *tail)
{
	int shown = len > 40 ? 40 : (int)len;

	bn_error_set(err, code, "%s%.*s%s%s", fmt_head, shown, s, len > 40 ? "..." : "", tail);
}

/* Correctly rounded, through strtof_l on a NUL-terminated copy. */
static int parse_slow(const char *s, size_t len, float *ret, struct bn_error *err)
{
	char stack[64], *copy = stack;
	float f;

	if (!c_locale) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory for the C locale");
		return -ENOMEM;
	}
	if (len >= sizeof(stack)) {
		copy = malloc(len + 1);
		if (!copy) {
			bn_error_set(err, BN_E_NO_MEMORY, "out of memory for a %zu-byte number", len);
			return -ENOMEM;
		}
	}
	memcpy(copy, s, len);
	copy[len] = '\0';
	f = strtof_l(copy, NULL, c_locale);
	if (copy != stack)
		free(copy);
	if (isinf(f)) {
		quote(err, BN_E_OUT_OF_RANGE, "value ", s, len, " is beyond float32");
		return -EINVAL;
	}
	*ret = f;
	return 0;
}

/* A JSON number split into its significant digits: (-1)^neg * w * 10^exp10. */
struct decimal {
	uint64_t w;      /* the first 19 significant digits */
	int64_t exp10;
	int ndig;        /* digits in w */
	bool neg;
};

#define ONES UINT64_C(0x0101010101010101)

static bool is_digit(char c)
{
	return (unsigned char)(c - '0') < 10;
}

static uint64_t load8(const char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/*
 * How many of the 8 bytes of v (first byte lowest) are ASCII digits before
 * the first that is not one. A byte is a digit when its high nibble is 3
 * and adding 6 leaves it so; an addition that carries out of a non-digit
 * byte only disturbs the bytes after it, which are not counted.
 */
static unsigned leading_digits(uint64_t v)
{
	uint64_t m = ((v & 0xf0 * ONES) ^ 0x30 * ONES) | (((v + 0x06 * ONES) & 0xf0 * ONES) ^ 0x30 * ONES);

	return m ? (unsigned)__builtin_ctzll(m) / 8 : 8;
}

/*
 * The value of the first n (1..8) digits of v. They are shifted to the top
 * so the bytes after them fall out and zeros lead; then pairs of digits
 * combine into 16-bit lanes, pairs of those into 32-bit lanes, then the two
 * halves, and no lane carries into the next (10 * 9 + 9, 100 * 99 + 99 and
 * 10^4 * 9999 + 9999 all fit). Subtracting '0' from a byte after the digits
 * may borrow, but only from bytes after it, which are shifted out.
 */
static uint64_t digits_value(uint64_t v, unsigned n)
{
	v = (v - 0x30 * ONES) << (8 * (8 - n));
	v = (v * 10 + (v >> 8)) & UINT64_C(0x00ff00ff00ff00ff);
	v = (v * 100 + (v >> 16)) & UINT64_C(0x0000ffff0000ffff);
	return (v * 10000 + (v >> 32)) & 0xffffffff;
}

static const uint64_t pow10_u64[] = { 1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000 };

/*
 * Append the digits at p to dec: into w while it has fewer than 19, each
 * one after the point lowering exp10; past 19, one before the point raises
 * exp10 and one after it is dropped. Up to eight at a time while eight
 * bytes remain; one at a time near the 19th digit and the end of the text.
 * Returns the end of the digits.
 */
__attribute__((always_inline))
static inline const char *digits(const char *p, const char *end, struct decimal *dec, bool frac)
{
	while (end - p >= 8) {
		uint64_t v = load8(p);
		unsigned n = leading_digits(v);

		if (n == 0)
			return p;
		if (dec->ndig + (int)n > 19)
			break;
		dec->w = dec->w * pow10_u64[n] + digits_value(v, n);
		dec->ndig += (int)n;
		dec->exp10 -= frac ? n : 0;
		p += n;
		if (n < 8)
			return p;
	}
	for (; p < end && is_digit(*p); p++) {
		if (dec->ndig < 19) {
			dec->w = dec->w * 10 + (uint64_t)(*p - '0');
			dec->ndig++;
			dec->exp10 -= frac;
		} else {
			dec->exp10 += !frac;
		}
	}
	return p;
}

/*
 * The longest JSON number at s[0..len): its end, with its digits in *dec,
 * or NULL when s does not start with one. Only the first 19 significant
 * digits are kept: the rest only scale the value (in the integer part) or
 * are dropped (after the point), which the conversion's error check covers.
 */
__attribute__((always_inline))
static inline const char *scan_decimal(const char *s, const char *end, struct decimal *ret)
{
	struct decimal d = { .neg = s < end && *s == '-' }, *dec = &d;
	const char *p = s;
	int64_t ex = 0;

	p += dec->neg;
	if (p == end || !is_digit(*p))
		return NULL;
	/* A lone 0 has no significant digit; any other integer part starts with one. */
	if (*p == '0') {
		p++;
	} else if (end - p < 2 || !is_digit(p[1])) {
		dec->w = (uint64_t)(*p++ - '0'); /* the usual single digit, without the wide load */
		dec->ndig = 1;
	} else {
		p = digits(p, end, dec, false);
	}
	if (end - p >= 2 && *p == '.' && is_digit(p[1])) {
		p++;
		if (!dec->w) {
			/* Zeros after the point and before the first digit only scale. */
			const char *z = p;

			while (z < end && *z == '0')
				z++;
			dec->exp10 -= z - p;
			p = z;
		}
		p = digits(p, end, dec, true);
	}
	if (end - p >= 2 && (*p == 'e' || *p == 'E')) {
		const char *e = p + 1;
		bool eneg = false;

		if (e < end && (*e == '+' || *e == '-'))
			eneg = *e++ == '-';
		if (e < end && is_digit(*e)) {
			for (; e < end && is_digit(*e); e++)
				if (ex < 1000000)
					ex = ex * 10 + (*e - '0');
			dec->exp10 += eneg ? -ex : ex;
			p = e;
		}
	}
	*ret = d;
	return p;
}

/* dec as the correctly rounded float32; s[0..len) is its text, for the exact path and errors. */
__attribute__((always_inline))
static inline int convert(const struct decimal *dec, const char *s, size_t len, float *ret, struct bn_error *err)
{
	int64_t exp10 = dec->exp10;
	double d;

	if (!dec->w) {
		*ret = dec->neg ? -0.0f : 0.0f;
		return 0;
	}
	/* The value is in [10^(ndig - 1 + exp10), 10^(ndig + exp10)). */
	if (dec->ndig + exp10 > 39) {
		quote(err, BN_E_OUT_OF_RANGE, "value ", s, len, " is beyond float32");
		return -EINVAL;
	}
	if (dec->ndig + exp10 < -46) {
		*ret = dec->neg ? -0.0f : 0.0f; /* below half the smallest subnormal */
		return 0;
	}
	d = (double)dec->w;
	if (exp10 >= 0)
		d *= pow10_dbl[exp10];
	else if (exp10 >= -22)
		d /= pow10_dbl[-exp10];
	else
		d = d / 1e22 / pow10_dbl[-exp10 - 22];
	/* At most a few ulps off; near a float32 midpoint or outside the normal range, be exact. */
	if (d >= (double)FLT_MIN && d <= (double)FLT_MAX) {
		uint64_t bits;
		int64_t low;

		memcpy(&bits, &d, sizeof(bits));
		low = (int64_t)(bits & ((UINT64_C(1) << 29) - 1)) - (INT64_C(1) << 28);
		if (low > 64 || low < -64) {
			float f = (float)d;
			*ret = dec->neg ? -f : f;
			return 0;
		}
	}
	pthread_once(&locale_once, make_c_locale);
	return parse_slow(s, len, ret, err);
}

int bn_float_parse_prefix(const char *s, size_t len, float *ret, size_t *ret_used, struct bn_error *err)
{
	struct decimal dec;
	const char *end = scan_decimal(s, s + len, &dec);
	float f;
	int r;

	if (!end) {
		quote(err, BN_E_INVALID_JSON, "'", s, len > 1 ? 1 : len, "' does not start a JSON number");
		return -EBADMSG;
	}
	r = convert(&dec, s, (size_t)(end - s), &f, err);
	if (r < 0)
		return r;
	*ret = f;
	*ret_used = (size_t)(end - s);
	return 0;
}

int bn_float_parse(const char *s, size_t len, float *ret, struct bn_error *err)
{
	struct decimal dec;
	const char *end = scan_decimal(s, s + len, &dec);

	if (!end || end != s + len) {
		quote(err, BN_E_INVALID_JSON, "'", s, len, "' is not a JSON number");
		return -EBADMSG;
	}
	return convert(&dec, s, len, ret, err);
}
