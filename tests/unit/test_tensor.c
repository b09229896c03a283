/*
 * test_tensor.c: lib/tensor.c's checks, caps without overflow, and helpers.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "bn/tensor.h"

static void refuse(unsigned rank, const size_t *shape, size_t max, int r, const char *code,
		const char *detail)
{
	struct bn_tensor t = { .rank = 77 };
	struct bn_error err = { 0 };

	assert(bn_tensor_init(&t, rank, shape, max, &err) == r);
	assert(strcmp(err.code, code) == 0 && strcmp(err.detail, detail) == 0);
	assert(t.rank == 77 && t.data == NULL);
	/* Without an error struct too. */
	assert(bn_tensor_init(&t, rank, shape, max, NULL) == r);
}

int main(void)
{
	struct bn_tensor t;
	char s[64];
	size_t huge = SIZE_MAX / 2 + 1;

	assert(bn_tensor_init(&t, 3, (size_t[]){ 2, 3, 4 }, 24, NULL) == 0);
	assert(t.rank == 3 && t.count == 24 && t.shape[0] == 2 && t.shape[2] == 4);
	for (size_t i = 0; i < t.count; i++)
		assert(t.data[i] == 0.0f);
	assert(bn_tensor_spatial(&t) == 4);
	bn_tensor_shape_str(&t, s, sizeof(s));
	assert(strcmp(s, "[2, 3, 4]") == 0);
	bn_tensor_shape_str(&t, s, 5);
	assert(strcmp(s, "[2, ") == 0);
	bn_tensor_finish(&t);
	assert(t.data == NULL && t.rank == 0);
	bn_tensor_finish(&t);

	assert(bn_tensor_init(&t, 2, (size_t[]){ 5, 3 }, 15, NULL) == 0);
	assert(bn_tensor_spatial(&t) == 1);
	bn_tensor_finish(&t);
	assert(bn_tensor_init(&t, 5, (size_t[]){ 1, 2, 3, 4, 5 }, 1000, NULL) == 0);
	assert(t.count == 120 && bn_tensor_spatial(&t) == 60);
	bn_tensor_shape_str(&t, s, sizeof(s));
	assert(strcmp(s, "[1, 2, 3, 4, 5]") == 0);
	bn_tensor_finish(&t);

	refuse(0, (size_t[]){ 1 }, 10, -EINVAL, BN_E_BAD_RANK, "expected a tensor of rank 1 to 5, got rank 0");
	refuse(6, (size_t[]){ 1, 1, 1, 1, 1, 1 }, 10, -EINVAL, BN_E_BAD_RANK,
			"expected a tensor of rank 1 to 5, got rank 6");
	refuse(2, (size_t[]){ 3, 0 }, 10, -EINVAL, BN_E_EMPTY_DIMENSION, "dimension 1 is empty (size 0)");
	refuse(2, (size_t[]){ 3, 4 }, 11, -E2BIG, BN_E_TOO_LARGE, "tensor has more than 11 elements");
	/* Products that overflow size_t are caught before they wrap. */
	refuse(3, (size_t[]){ huge, huge, 4 }, SIZE_MAX, -E2BIG, BN_E_TOO_LARGE,
			"tensor has more than 18446744073709551615 elements");
	refuse(2, (size_t[]){ (size_t)1 << 32, ((size_t)1 << 32) + 1 }, SIZE_MAX, -E2BIG,
			BN_E_TOO_LARGE, "tensor has more than 18446744073709551615 elements");
	return 0;
}
