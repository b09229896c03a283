/*
 * float.c: float32 to shortest decimal text and back (bn/float.h).
 *
 * Formatting follows the Schubfach idea (R. Giulietti, "The Schubfach way
 * to render doubles", 2020), worked out here for binary32. A finite v is
 * c * 2^q. Every decimal that reads back as v lies in the rounding interval
 * R around it, whose width is 2^q (3/4 * 2^q just above a power of two).
 * With k = floor(log10(width)), R scaled by 10^-k is between 1 and 10 wide,
 * so it holds at least one integer and at most one multiple of ten. If it
 * holds a multiple of ten, that one is the shortest; otherwise the shortest
 * is one of the two integers around v * 10^-k, and the nearer one wins
 * (ties to even). The scaled bounds are computed as 4 * x * 10^-k with one
 * 64 x 64 bit product against a 63-bit approximation of 10^-k, rounded to
 * odd so that comparing them with even integers gives the exact answer.
 * The table of 10^-k is computed once, exactly, with a small bignum.
 *
 * Parsing checks the JSON grammar and splits the number into its first 19
 * significant digits and a power of ten in one pass, taking eight digits at
 * a time where it can (SWAR: one 64-bit load, a check that all eight bytes
 * are digits, three multiplies for their value). The digits are scaled in
 * double, then rounded to float. The double is within a few of its own
 * ulps of the exact value, and a float32 rounding boundary (a midpoint
 * between two floats) is exactly representable in double, so unless the
 * double lands within that error of a midpoint, rounding it to float gives
 * the correctly rounded result. The rare cases that land near one, and
 * results outside the normal range (subnormals), go to strtof_l in the C
 * locale, which is exact.
 */
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bn/float.h"

__extension__ typedef unsigned __int128 u128;

/* Decimal exponents k that binary32 needs: floor(log10(2^q)) for q in -149..104. */
#define K_MIN (-45)
#define K_MAX 31
#define C_MIN ((uint32_t)1 << 23)
#define Q_MIN (-149)

struct pow10_entry {
	uint64_t g;  /* floor(10^-k * 2^(62 - e)), in [2^62, 2^63) */
	int e;       /* floor(log2(10^-k)) */
};

static struct pow10_entry pow10_inv[K_MAX - K_MIN + 1];
static locale_t c_locale;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static atomic_bool init_done; /* set last by init: a plain load skips pthread_once after */

/* A little-endian bignum just wide enough for 10^45 and 2^(62 + 150). */
#define BIG_LIMBS 8

struct big {
	uint32_t w[BIG_LIMBS];
};

static void big_mul10(struct big *b)
{
	uint64_t carry = 0;

	for (int i = 0; i < BIG_LIMBS; i++) {
		uint64_t x = (uint64_t)b->w[i] * 10 + carry;
		b->w[i] = (uint32_t)x;
		carry = x >> 32;
	}
}

static void big_div10(struct big *b)
{
	uint64_t rem = 0;

	for (int i = BIG_LIMBS - 1; i >= 0; i--) {
		uint64_t x = rem << 32 | b->w[i];
		b->w[i] = (uint32_t)(x / 10);
		rem = x % 10;
	}
}

static int big_bitlen(const struct big *b)
{
	for (int i = BIG_LIMBS - 1; i >= 0; i--) {
		if (b->w[i])
			return i * 32 + 32 - __builtin_clz(b->w[i]);
	}
	return 0;
}

/* floor(b / 2^shift) for shift >= 0, or b * 2^-shift, as 64 bits. */
static uint64_t big_bits(const struct big *b, int shift)
{
	uint64_t r = 0;

	for (int bit = 63; bit >= 0; bit--) {
		int src = bit + shift;

		if (src >= 0 && src < BIG_LIMBS * 32 && (b->w[src / 32] >> (src % 32) & 1))
			r |= (uint64_t)1 << bit;
	}
	return r;
}

static void init(void)
{
	for (int k = K_MIN; k <= K_MAX; k++) {
		struct pow10_entry *t = &pow10_inv[k - K_MIN];
		struct big b = { { 1 } };
		int n = -k, len;

		for (int i = 0; i < abs(n); i++)
			big_mul10(&b);
		len = big_bitlen(&b);
		if (n >= 0) {
			t->e = len - 1;
			t->g = big_bits(&b, t->e - 62);
		} else {
			/* 10^n = 2^-len * f with f in [1, 2), as 10^|n| is no power of two. */
			t->e = -len;
			b = (struct big){ { 0 } };
			b.w[(62 + len) / 32] = (uint32_t)1 << ((62 + len) % 32);
			for (int i = 0; i < -n; i++)
				big_div10(&b);
			t->g = big_bits(&b, 0);
		}
	}
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	atomic_store_explicit(&init_done, true, memory_order_release);
}

static void ensure_init(void)
{
	if (!atomic_load_explicit(&init_done, memory_order_acquire))
		pthread_once(&init_once, init);
}

/* floor(q * log10(2)) and floor(q * log10(2) + log10(3/4)), exact for |q| < 1000. */
static int floor_log10_pow2(int q)
{
	return (int)(((int64_t)q * 661971961083LL) >> 41);
}

static int floor_log10_three_quarters_pow2(int q)
{
	return (int)(((int64_t)q * 661971961083LL - 274743187321LL) >> 41);
}

/* The integer part of g * cp / 2^95, rounded to odd. */
static uint64_t round_to_odd(uint64_t g, uint64_t cp)
{
	uint64_t hi = (uint64_t)(((u128)g * cp) >> 64);

	return hi >> 31 | (((hi & 0x7fffffff) + 0x7fffffff) >> 31);
}

/* The shortest decimal d * 10^e in the rounding interval of c * 2^q. */
__attribute__((always_inline))
static inline void shortest(uint32_t c, int q, uint64_t *ret_d, int *ret_e)
{
	const struct pow10_entry *t;
	uint64_t cb = (uint64_t)c << 2, cbl, cbr = cb + 2;
	uint64_t vb, vbl, vbr, s, sp10, tp10, d;
	unsigned out = c & 1; /* an odd c excludes the interval's ends */
	int k, h;

	if (c != C_MIN || q == Q_MIN) {
		cbl = cb - 2;
		k = floor_log10_pow2(q);
	} else {
		/* Just above a power of two the next float down is nearer. */
		cbl = cb - 1;
		k = floor_log10_three_quarters_pow2(q);
	}
	t = &pow10_inv[k - K_MIN];
	h = q + t->e + 33;
	vb = round_to_odd(t->g + 1, cb << h);
	vbl = round_to_odd(t->g + 1, cbl << h);
	vbr = round_to_odd(t->g + 1, cbr << h);

	s = vb >> 2;
	sp10 = s / 10 * 10;
	tp10 = sp10 + 10;
	bool upin = vbl + out <= sp10 << 2;
	bool wpin = (tp10 << 2) + out <= vbr;
	if (upin != wpin) {
		d = upin ? sp10 : tp10;
	} else {
		uint64_t tt = s + 1;
		bool uin = vbl + out <= s << 2;
		bool win = (tt << 2) + out <= vbr;

		if (uin != win) {
			d = uin ? s : tt;
		} else {
			/* Both read back: the nearer, and the even one on a tie. */
			int64_t cmp = (int64_t)(vb - ((s + tt) << 1));
			d = cmp < 0 || (cmp == 0 && !(s & 1)) ? s : tt;
		}
	}
	while (d % 10 == 0) {
		d /= 10;
		k++;
	}
	*ret_d = d;
	*ret_e = k;
}

static const uint64_t pow10_count[] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
};

static const char digit_pairs[] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* How many digits d (1 to 10^10 - 1) has: from its bit length, then one comparison. */
static int digit_count(uint64_t d)
{
	/* floor(log10(2^b)) + 1 for b = bit length - 1: the fewest digits a number that long has. */
	static const unsigned char least[] = {
		1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6, 6, 6,
		7, 7, 7, 7, 8, 8, 8, 9, 9, 9, 10, 10, 10, 10,
	};
	int n = least[63 - __builtin_clzll(d)];

	return n + (n < 10 && d >= pow10_count[n]);
}

/* Write the four digits of x (below 10^4, leading zeros kept) at p. */
static inline void put4(char *p, uint32_t x)
{
	uint32_t hi = (x * 5243) >> 19; /* x / 100, exact below 43699 */

	memcpy(p, digit_pairs + 2 * hi, 2);
	memcpy(p + 2, digit_pairs + 2 * (x - hi * 100), 2);
}

/*
 * Write the n digits of d (below 10^9) so that the last one ends just
 * before end: eight or nine as two groups of four and a leading digit,
 * fewer a pair at a time. Nothing is written before the first digit's place.
 */
__attribute__((always_inline))
static inline void put_digits(char *end, uint64_t d, int n)
{
	uint32_t x = (uint32_t)d;

	if (n >= 8) {
		uint32_t lo = x % 100000000;

		put4(end - 4, lo % 10000);
		put4(end - 8, lo / 10000);
		if (n == 9)
			end[-9] = (char)('0' + x / 100000000);
		return;
	}
	while (x >= 100) {
		uint32_t q = x / 100;

		end -= 2;
		memcpy(end, digit_pairs + 2 * (x - q * 100), 2);
		x = q;
	}
	if (x >= 10)
		memcpy(end - 2, digit_pairs + 2 * x, 2);
	else
		end[-1] = (char)('0' + x);
}

/*
 * Lay out the n digits of d with exp10 the exponent of the first, as
 * Python's repr does, at p; returns the end. The digits are written once,
 * straight to where they end up, save that a point inside them moves the
 * digits before it one place left (at most 16, usually one).
 */
__attribute__((always_inline))
static inline char *layout(char *p, uint64_t d, int n, int exp10)
{
	if (exp10 >= 16 || exp10 < -4) {
		/* Scientific as Python's repr writes it: 1e-05, 1.5e+38. */
		put_digits(p + 1 + n, d, n);
		p[0] = p[1];
		if (n > 1) {
			p[1] = '.';
			p += n + 1;
		} else {
			p++;
		}
		*p++ = 'e';
		*p++ = exp10 < 0 ? '-' : '+';
		if (exp10 < 0)
			exp10 = -exp10;
		memcpy(p, digit_pairs + 2 * exp10, 2);
		return p + 2;
	}
	if (exp10 < 0) {
		memcpy(p, "0.000000", 8); /* "0." and up to three zeros; the digits overwrite the rest */
		p += 1 - exp10;
		put_digits(p + n, d, n);
		return p + n;
	}
	if (n <= exp10 + 1) {
		put_digits(p + n, d, n);
		p += n;
		memset(p, '0', (size_t)(exp10 + 1 - n));
		p += exp10 + 1 - n;
		memcpy(p, ".0", 2);
		return p + 2;
	}
	if (exp10 == 0) {
		/* The usual case: one digit before the point. */
		put_digits(p + 1 + n, d, n);
		p[0] = p[1];
	} else {
		put_digits(p + n, d, n);
		memmove(p + exp10 + 2, p + exp10 + 1, (size_t)(n - exp10 - 1));
	}
	p[exp10 + 1] = '.';
	return p + n + 1;
}

__attribute__((always_inline))
static inline size_t format(float v, char *out)
{
	uint32_t bits, c;
	uint64_t d;
	int q, e, n;
	char *p = out;

	memcpy(&bits, &v, sizeof(bits));
	if ((bits >> 23 & 0xff) == 0xff) {
		const char *s = bits & 0x7fffff ? "NaN" : bits >> 31 ? "-Infinity" : "Infinity";
		size_t len = strlen(s);

		memcpy(out, s, len + 1);
		return len;
	}
	if (bits >> 31)
		*p++ = '-';
	if ((bits & 0x7fffffff) == 0) {
		memcpy(p, "0.0", 4);
		return (size_t)(p - out) + 3;
	}
	ensure_init();
	c = bits & 0x7fffff;
	q = (int)(bits >> 23 & 0xff);
	if (q) {
		c |= C_MIN;
		q -= 150;
	} else {
		q = Q_MIN;
	}
	shortest(c, q, &d, &e);
	n = digit_count(d);
	p = layout(p, d, n, e + n - 1); /* the exponent of the leading digit */
	*p = '\0';
	return (size_t)(p - out);
}

size_t bn_float_format(float v, char out[BN_FLOAT_STR_MAX])
{
	return format(v, out);
}

char *bn_float_format_list(char *out, const float *v, size_t n, bool first)
{
	ensure_init();
	for (size_t i = 0; i < n; i++) {
		if (i || !first) {
			memcpy(out, ", ", 2);
			out += 2;
		}
		out += format(v[i], out);
	}
	return out;
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
	ensure_init();
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
