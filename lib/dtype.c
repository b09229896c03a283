/*
 * dtype.c: binary16, bfloat16, float32 and float64 to float32 (bn/dtype.h).
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "bn/dtype.h"

size_t bn_dtype_size(enum bn_dtype dt)
{
	switch (dt) {
	case BN_DTYPE_F16:
	case BN_DTYPE_BF16:
		return 2;
	case BN_DTYPE_F32:
		return 4;
	case BN_DTYPE_F64:
		return 8;
	}
	return 0;
}

float bn_dtype_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h >> 15) << 31, exp = h >> 10 & 0x1f, mant = h & 0x3ff, bits;
	float f;

	if (exp == 0) {
		/* Zero or subnormal: mant * 2^-24, exact in float32. */
		f = ldexpf((float)mant, -24);
		return sign ? -f : f;
	}
	if (exp == 31)
		bits = sign | 0x7f800000u | mant << 13;
	else
		bits = sign | (exp - 15 + 127) << 23 | mant << 13;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

/* n bytes at p as an unsigned integer in the given byte order. */
static uint64_t load(const unsigned char *p, size_t n, bool big_endian)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[big_endian ? n - 1 - i : i] << (8 * i);
	return v;
}

/* One element to float32; 0, or 1 not finite, 2 beyond float32. */
static int one(const unsigned char *p, enum bn_dtype dt, bool big_endian, float *ret)
{
	uint64_t v = load(p, bn_dtype_size(dt), big_endian);
	uint32_t bits;
	double d;

	switch (dt) {
	case BN_DTYPE_F16:
		*ret = bn_dtype_f16_to_f32((uint16_t)v);
		break;
	case BN_DTYPE_BF16:
		bits = (uint32_t)v << 16;
		memcpy(ret, &bits, sizeof(*ret));
		break;
	case BN_DTYPE_F32:
		bits = (uint32_t)v;
		memcpy(ret, &bits, sizeof(*ret));
		break;
	case BN_DTYPE_F64:
		memcpy(&d, &v, sizeof(d));
		if (!isfinite(d))
			return 1;
		*ret = (float)d; /* round to nearest, ties to even */
		return isfinite(*ret) ? 0 : 2;
	}
	return isfinite(*ret) ? 0 : 1;
}

int bn_dtype_to_f32(const unsigned char *src, enum bn_dtype dt, bool big_endian, size_t count,
		float *out, const char *what, struct bn_error *err)
{
	size_t size = bn_dtype_size(dt);

	for (size_t i = 0; i < count; i++) {
		int r = one(src + i * size, dt, big_endian, &out[i]);

		if (r == 1) {
			bn_error_set(err, BN_E_NOT_FINITE, "%s at flat index %zu is not finite (NaN or infinity)", what, i);
			return -EINVAL;
		}
		if (r == 2) {
			double d;
			uint64_t v = load(src + i * size, size, big_endian);

			memcpy(&d, &v, sizeof(d));
			bn_error_set(err, BN_E_OUT_OF_RANGE, "%s at flat index %zu: %g is beyond float32", what, i, d);
			return -EINVAL;
		}
	}
	return 0;
}
