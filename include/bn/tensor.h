/*
 * bn/tensor.h: dense float32 tensors, row-major, rank 1 to BN_TENSOR_MAX_RANK.
 *
 * A BatchNorm input has rank 2..5 and its channel on axis 1: (N, C),
 * (N, C, L), (N, C, H, W), (N, C, D, H, W). Every tensor is created under
 * an explicit cap on its element count, checked without overflow.
 */
#ifndef BN_TENSOR_H
#define BN_TENSOR_H

#include <stddef.h>

#include "bn/error.h"

#define BN_TENSOR_MAX_RANK 5

struct bn_tensor {
	unsigned rank;
	size_t shape[BN_TENSOR_MAX_RANK];
	size_t count;  /* product of shape */
	float *data;   /* count floats, owned by the tensor */
};

/*
 * Allocate t with the given rank and shape, data zeroed. Fails with -EINVAL
 * (BN_E_BAD_RANK) for a rank outside 1..BN_TENSOR_MAX_RANK, -EINVAL
 * (BN_E_EMPTY_DIMENSION) for a zero dimension, -E2BIG (BN_E_TOO_LARGE) when
 * the product overflows or exceeds max_elements, -ENOMEM. t is written only
 * on success.
 */
int bn_tensor_init(struct bn_tensor *t, unsigned rank, const size_t shape[],
		size_t max_elements, struct bn_error *err);

/*
 * bn_tensor_init without zeroing the data, for a caller that writes every
 * element at once (a decoder): the same checks and returns.
 */
int bn_tensor_init_raw(struct bn_tensor *t, unsigned rank, const size_t shape[],
		size_t max_elements, struct bn_error *err);

/* Free t's data and zero it. Accepts a zeroed or already-finished tensor. */
void bn_tensor_finish(struct bn_tensor *t);

/* Elements per channel per sample: the product of shape[2..rank-1] (1 for rank 2). */
size_t bn_tensor_spatial(const struct bn_tensor *t);

/* Write "[2, 3, 4]" into out (always NUL-terminated, truncated to size). */
void bn_tensor_shape_str(const struct bn_tensor *t, char *out, size_t size);

#endif
