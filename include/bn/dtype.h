/*
 * bn/dtype.h: floating-point element types as files carry them, to float32.
 *
 * NumPy's .npy and safetensors hold tensors as raw bytes of one dtype in
 * either byte order. Everything batchnormd computes is float32, so values
 * are converted on the way in: half (IEEE binary16) and bfloat16 exactly
 * (every one of their finite values is a float32), float32 as is, and
 * float64 rounded to the nearest float32, ties to even (what a C cast does
 * under the default rounding mode, and what numpy's astype(np.float32) and
 * torch's .float() do). A value that is NaN or infinite, or a float64 whose
 * rounding overflows float32, is refused; nothing is clamped.
 */
#ifndef BN_DTYPE_H
#define BN_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn/error.h"

enum bn_dtype {
	BN_DTYPE_F16,  /* IEEE binary16 */
	BN_DTYPE_BF16, /* bfloat16: the top half of a float32 */
	BN_DTYPE_F32,
	BN_DTYPE_F64,
};

/* Bytes per element of dt: 2, 2, 4 or 8. */
size_t bn_dtype_size(enum bn_dtype dt);

/* The float32 whose value a binary16 pattern has (exact; NaN and inf map to themselves). */
float bn_dtype_f16_to_f32(uint16_t h);

/*
 * Convert count elements of dt at src (big-endian when big_endian, else
 * little) into out[0..count). On a value that is not finite, -EINVAL with
 * BN_E_NOT_FINITE; on a float64 beyond float32, -EINVAL with
 * BN_E_OUT_OF_RANGE; the detail says "<what> at flat index <i> ...". out may be
 * partly written on error.
 */
int bn_dtype_to_f32(const unsigned char *src, enum bn_dtype dt, bool big_endian, size_t count,
		float *out, const char *what, struct bn_error *err);

#endif
