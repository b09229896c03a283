/*
 * bn/npy.h: NumPy .npy files of float32, read and written in memory.
 *
 * Reads format versions 1.0, 2.0 and 3.0 holding float16, float32 or
 * float64 of either byte order ('<f2', '<f4', '<f8', '>f2', '>f4', '>f8') in
 * C order, converted to float32 as bn/dtype.h says (a float64 beyond
 * float32 is -EINVAL, BN_E_OUT_OF_RANGE), and writes float32 ('<f4') as
 * version 1.0.
 * Everything else is refused with a message saying what was found:
 * another dtype or Fortran order is -ENOTSUP (BN_E_UNSUPPORTED_DTYPE); a bad
 * magic, a header that does not parse, a header length that runs past the
 * file, or data shorter or longer than the shape says is -EBADMSG
 * (BN_E_INVALID_NPY).
 */
#ifndef BN_NPY_H
#define BN_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "bn/buf.h"
#include "bn/error.h"
#include "bn/tensor.h"

/*
 * Parse the .npy file in buf[0..len) into a freshly allocated *ret of rank
 * 1..BN_TENSOR_MAX_RANK and at most max_elements elements (-E2BIG beyond).
 * Values must be finite (-EINVAL, BN_E_NOT_FINITE, naming the flat index).
 * *ret is written only on success.
 */
int bn_npy_read(const void *buf, size_t len, size_t max_elements,
		struct bn_tensor *ret, struct bn_error *err);

/* Append t as a .npy file to out. */
int bn_npy_write(struct bn_buf *out, const struct bn_tensor *t);

/* Append a .npy file of one little-endian int64 ('<i8', shape ()) to out. */
int bn_npy_write_i64(struct bn_buf *out, int64_t v);

#endif
