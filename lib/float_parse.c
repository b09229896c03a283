/*
 * float_parse.c: JSON numbers to correctly rounded float32 (bn/float.h).
 *
 * One pass checks the JSON grammar and splits the number into its first 19
 * significant digits and a power of ten, taking up to eight digits at a
 * time where eight bytes remain (SWAR: one 64-bit load, a count of the
 * leading digit bytes, three multiplies for their value), so no caller
 * finds a number's end before reading it; bn_float_parse_run reads a whole
 * ", "-separated run in one loop. Three ways to float32 follow, each taken
 * only when it is sure. Eisel-Lemire: the digits times a 64-bit 10^q in one
 * product, decided unless the bits past the rounding bit are all zeros or
 * all ones (see eisel_lemire). Then the digits scaled in double: the double
 * is within a few of its own ulps of the exact value, and a float32
 * rounding boundary (a midpoint between two floats) is exactly
 * representable in double, so unless the double lands within that error of
 * a midpoint, rounding it to float is right. Last, for what lands near one
 * and for subnormals, strtof_l in the C locale, which is exact.
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

__extension__ typedef unsigned __int128 u128;

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
	bool truncated;  /* digits past the 19th were dropped: w is short of the value */
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
			dec->truncated = true;
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

/*
 * 10^q for q in POW10_MIN..POW10_MAX, the range a float32's decimal can
 * need, as mant * 2^(e2 - 63): e2 = floor(log2(10^q)) and mant =
 * floor(10^q * 2^(63 - e2)), so mant's top bit is set and it is exact for
 * 0 <= q <= 27 and at most one unit short otherwise (computed exactly
 * with integers, then truncated).
 */
#define POW10_MIN (-65)
#define POW10_MAX 38

static const struct { uint64_t mant; int e2; } pow10_m64[POW10_MAX - POW10_MIN + 1] = {
	{ UINT64_C(0x86ccbb52ea94baea), -216 }, { UINT64_C(0xa87fea27a539e9a5), -213 },
	{ UINT64_C(0xd29fe4b18e88640e), -210 }, { UINT64_C(0x83a3eeeef9153e89), -206 },
	{ UINT64_C(0xa48ceaaab75a8e2b), -203 }, { UINT64_C(0xcdb02555653131b6), -200 },
	{ UINT64_C(0x808e17555f3ebf11), -196 }, { UINT64_C(0xa0b19d2ab70e6ed6), -193 },
	{ UINT64_C(0xc8de047564d20a8b), -190 }, { UINT64_C(0xfb158592be068d2e), -187 },
	{ UINT64_C(0x9ced737bb6c4183d), -183 }, { UINT64_C(0xc428d05aa4751e4c), -180 },
	{ UINT64_C(0xf53304714d9265df), -177 }, { UINT64_C(0x993fe2c6d07b7fab), -173 },
	{ UINT64_C(0xbf8fdb78849a5f96), -170 }, { UINT64_C(0xef73d256a5c0f77c), -167 },
	{ UINT64_C(0x95a8637627989aad), -163 }, { UINT64_C(0xbb127c53b17ec159), -160 },
	{ UINT64_C(0xe9d71b689dde71af), -157 }, { UINT64_C(0x9226712162ab070d), -153 },
	{ UINT64_C(0xb6b00d69bb55c8d1), -150 }, { UINT64_C(0xe45c10c42a2b3b05), -147 },
	{ UINT64_C(0x8eb98a7a9a5b04e3), -143 }, { UINT64_C(0xb267ed1940f1c61c), -140 },
	{ UINT64_C(0xdf01e85f912e37a3), -137 }, { UINT64_C(0x8b61313bbabce2c6), -133 },
	{ UINT64_C(0xae397d8aa96c1b77), -130 }, { UINT64_C(0xd9c7dced53c72255), -127 },
	{ UINT64_C(0x881cea14545c7575), -123 }, { UINT64_C(0xaa242499697392d2), -120 },
	{ UINT64_C(0xd4ad2dbfc3d07787), -117 }, { UINT64_C(0x84ec3c97da624ab4), -113 },
	{ UINT64_C(0xa6274bbdd0fadd61), -110 }, { UINT64_C(0xcfb11ead453994ba), -107 },
	{ UINT64_C(0x81ceb32c4b43fcf4), -103 }, { UINT64_C(0xa2425ff75e14fc31), -100 },
	{ UINT64_C(0xcad2f7f5359a3b3e), -97 }, { UINT64_C(0xfd87b5f28300ca0d), -94 },
	{ UINT64_C(0x9e74d1b791e07e48), -90 }, { UINT64_C(0xc612062576589dda), -87 },
	{ UINT64_C(0xf79687aed3eec551), -84 }, { UINT64_C(0x9abe14cd44753b52), -80 },
	{ UINT64_C(0xc16d9a0095928a27), -77 }, { UINT64_C(0xf1c90080baf72cb1), -74 },
	{ UINT64_C(0x971da05074da7bee), -70 }, { UINT64_C(0xbce5086492111aea), -67 },
	{ UINT64_C(0xec1e4a7db69561a5), -64 }, { UINT64_C(0x9392ee8e921d5d07), -60 },
	{ UINT64_C(0xb877aa3236a4b449), -57 }, { UINT64_C(0xe69594bec44de15b), -54 },
	{ UINT64_C(0x901d7cf73ab0acd9), -50 }, { UINT64_C(0xb424dc35095cd80f), -47 },
	{ UINT64_C(0xe12e13424bb40e13), -44 }, { UINT64_C(0x8cbccc096f5088cb), -40 },
	{ UINT64_C(0xafebff0bcb24aafe), -37 }, { UINT64_C(0xdbe6fecebdedd5be), -34 },
	{ UINT64_C(0x89705f4136b4a597), -30 }, { UINT64_C(0xabcc77118461cefc), -27 },
	{ UINT64_C(0xd6bf94d5e57a42bc), -24 }, { UINT64_C(0x8637bd05af6c69b5), -20 },
	{ UINT64_C(0xa7c5ac471b478423), -17 }, { UINT64_C(0xd1b71758e219652b), -14 },
	{ UINT64_C(0x83126e978d4fdf3b), -10 }, { UINT64_C(0xa3d70a3d70a3d70a), -7 },
	{ UINT64_C(0xcccccccccccccccc), -4 }, { UINT64_C(0x8000000000000000), 0 },
	{ UINT64_C(0xa000000000000000), 3 }, { UINT64_C(0xc800000000000000), 6 },
	{ UINT64_C(0xfa00000000000000), 9 }, { UINT64_C(0x9c40000000000000), 13 },
	{ UINT64_C(0xc350000000000000), 16 }, { UINT64_C(0xf424000000000000), 19 },
	{ UINT64_C(0x9896800000000000), 23 }, { UINT64_C(0xbebc200000000000), 26 },
	{ UINT64_C(0xee6b280000000000), 29 }, { UINT64_C(0x9502f90000000000), 33 },
	{ UINT64_C(0xba43b74000000000), 36 }, { UINT64_C(0xe8d4a51000000000), 39 },
	{ UINT64_C(0x9184e72a00000000), 43 }, { UINT64_C(0xb5e620f480000000), 46 },
	{ UINT64_C(0xe35fa931a0000000), 49 }, { UINT64_C(0x8e1bc9bf04000000), 53 },
	{ UINT64_C(0xb1a2bc2ec5000000), 56 }, { UINT64_C(0xde0b6b3a76400000), 59 },
	{ UINT64_C(0x8ac7230489e80000), 63 }, { UINT64_C(0xad78ebc5ac620000), 66 },
	{ UINT64_C(0xd8d726b7177a8000), 69 }, { UINT64_C(0x878678326eac9000), 73 },
	{ UINT64_C(0xa968163f0a57b400), 76 }, { UINT64_C(0xd3c21bcecceda100), 79 },
	{ UINT64_C(0x84595161401484a0), 83 }, { UINT64_C(0xa56fa5b99019a5c8), 86 },
	{ UINT64_C(0xcecb8f27f4200f3a), 89 }, { UINT64_C(0x813f3978f8940984), 93 },
	{ UINT64_C(0xa18f07d736b90be5), 96 }, { UINT64_C(0xc9f2c9cd04674ede), 99 },
	{ UINT64_C(0xfc6f7c4045812296), 102 }, { UINT64_C(0x9dc5ada82b70b59d), 106 },
	{ UINT64_C(0xc5371912364ce305), 109 }, { UINT64_C(0xf684df56c3e01bc6), 112 },
	{ UINT64_C(0x9a130b963a6c115c), 116 }, { UINT64_C(0xc097ce7bc90715b3), 119 },
	{ UINT64_C(0xf0bdc21abb48db20), 122 }, { UINT64_C(0x96769950b50d88f4), 126 },
};

/*
 * The Eisel-Lemire way (D. Lemire, "Number Parsing at a Gigabyte per
 * Second", 2021), for binary32: w (all the digits, none dropped) times
 * 10^q as one 64 x 64 bit product. With w shifted so its top bit is set,
 * the product's high word holds the value's leading bits; since mant is at
 * most one unit short, the exact product is less than 2^64 above the
 * computed one, so the high word is exact or one short. Past the 25 bits
 * kept (24 and the rounding bit) the high word has 38 or 39 more: unless
 * they are all zeros (possibly exact, a tie) or all ones (one more would
 * carry), neither error can change the rounding, and there is no tie. Those
 * cases, subnormals and overflow return false, for the double path.
 */
__attribute__((always_inline))
static inline bool eisel_lemire(uint64_t w, int q, uint32_t *ret_bits)
{
	int lz = __builtin_clzll(w);
	uint64_t hi = (uint64_t)(((u128)(w << lz) * pow10_m64[q - POW10_MIN].mant) >> 64);
	unsigned upper = (unsigned)(hi >> 63), shift = 38 + upper;
	uint64_t mask = (UINT64_C(1) << shift) - 1, m;
	/* The leading bit's exponent, biased: the product's top bit is bit 126 + upper. */
	int biased = pow10_m64[q - POW10_MIN].e2 + 63 + (int)upper - lz + 127;

	if ((hi & mask) == 0 || (hi & mask) == mask)
		return false;
	m = ((hi >> shift) + 1) >> 1; /* rounded to 24 bits; no tie, as bits below are set */
	if (m >> 24) {
		m >>= 1;
		biased++;
	}
	if (biased <= 0 || biased >= 255)
		return false;
	*ret_bits = (uint32_t)biased << 23 | (uint32_t)(m & 0x7fffff);
	return true;
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
	if (!dec->truncated) {
		uint32_t bits;

		if (eisel_lemire(dec->w, (int)exp10, &bits)) {
			bits |= (uint32_t)dec->neg << 31;
			memcpy(ret, &bits, sizeof(bits));
			return 0;
		}
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

/* The bytes a number token runs over: digits, - + . e E. */
static const bool number_chars[256] = {
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1, ['-'] = 1, ['+'] = 1, ['.'] = 1, ['e'] = 1, ['E'] = 1,
};

size_t bn_float_parse_run(const char *s, size_t len, float *out, size_t room, size_t *ret_used)
{
	const char *p = s, *end = s + len, *last = s;
	size_t n = 0;

	while (n < room) {
		struct decimal dec;
		const char *e = scan_decimal(p, end, &dec);

		/* A number is taken whole: one that runs on ("1.e5", "01") is the caller's to refuse. */
		if (!e || (e < end && number_chars[(unsigned char)*e]) ||
		    convert(&dec, p, (size_t)(e - p), &out[n], NULL) < 0)
			break;
		n++;
		last = e;
		if (end - e < 3 || e[0] != ',' || e[1] != ' ' || e[2] <= ' ')
			break;
		p = e + 2;
	}
	*ret_used = (size_t)(last - s);
	return n;
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
