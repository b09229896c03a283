/*
 * tensor.c: allocating float32 tensors under an element cap.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/tensor.h"

static int tensor_alloc(struct bn_tensor *t, unsigned rank, const size_t shape[],
		size_t max_elements, bool zero, struct bn_error *err)
{
	size_t count = 1;
	float *data;

	if (rank < 1 || rank > BN_TENSOR_MAX_RANK) {
		bn_error_set(err, BN_E_BAD_RANK, "expected a tensor of rank 1 to %d, got rank %u",
				BN_TENSOR_MAX_RANK, rank);
		return -EINVAL;
	}
	for (unsigned i = 0; i < rank; i++) {
		if (shape[i] == 0) {
			bn_error_set(err, BN_E_EMPTY_DIMENSION, "dimension %u is empty (size 0)", i);
			return -EINVAL;
		}
	}
	/* Check every factor against the cap so the product never overflows. */
	for (unsigned i = 0; i < rank; i++) {
		if (shape[i] > max_elements / count) {
			bn_error_set(err, BN_E_TOO_LARGE, "tensor has more than %zu elements", max_elements);
			return -E2BIG;
		}
		count *= shape[i];
	}
	data = zero ? calloc(count, sizeof(*data)) : malloc(count * sizeof(*data));
	if (!data) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory for %zu elements", count);
		return -ENOMEM;
	}
	*t = (struct bn_tensor){ .rank = rank, .count = count, .data = data };
	memcpy(t->shape, shape, rank * sizeof(shape[0]));
	return 0;
}

int bn_tensor_init(struct bn_tensor *t, unsigned rank, const size_t shape[],
		size_t max_elements, struct bn_error *err)
{
	return tensor_alloc(t, rank, shape, max_elements, true, err);
}

int bn_tensor_init_raw(struct bn_tensor *t, unsigned rank, const size_t shape[],
		size_t max_elements, struct bn_error *err)
{
	return tensor_alloc(t, rank, shape, max_elements, false, err);
}

void bn_tensor_finish(struct bn_tensor *t)
{
	free(t->data);
	*t = (struct bn_tensor){ 0 };
}

size_t bn_tensor_spatial(const struct bn_tensor *t)
{
	size_t n = 1;

	for (unsigned i = 2; i < t->rank; i++)
		n *= t->shape[i];
	return n;
}

void bn_tensor_shape_str(const struct bn_tensor *t, char *out, size_t size)
{
	size_t len = 0;

	if (!size)
		return;
	out[0] = '\0';
	for (unsigned i = 0; i < t->rank && len < size; i++) {
		int n = snprintf(out + len, size - len, "%s%zu", i ? ", " : "[", t->shape[i]);
		if (n < 0)
			return;
		len += (size_t)n;
	}
	if (len < size)
		snprintf(out + len, size - len, "]");
}
