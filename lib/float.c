/*
 * float.c: float32 to shortest decimal text (bn/float.h).
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
 * Parsing is in float_parse.c.
 */
#include <errno.h>
#include <float.h>
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
