/*
 * fuzz_npy.c: the .npy reader (bn/npy.h).
 *
 * Accepted: the tensor written as a .npy file with bn_npy_write and read
 * again is the same tensor, shape and values bit for bit. Refused: the
 * output tensor was not written, and the error says why.
 */
#include <errno.h>
#include <stdbool.h>

#include "bn/buf.h"
#include "bn/npy.h"
#include "fuzz.h"

#define MAX_ELEMENTS (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bn_tensor t, sentinel, again;
	struct bn_error err = { 0 };
	struct bn_buf out;
	int r;

	memset(&t, 0x5a, sizeof(t));
	sentinel = t;
	r = bn_npy_read(data, size, MAX_ELEMENTS, &t, &err);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -EINVAL || r == -ENOTSUP || r == -E2BIG || r == -ENOMEM);
		FUZZ_CHECK(memcmp(&t, &sentinel, sizeof(t)) == 0);
		FUZZ_CHECK_ERROR(&err);
		return 0;
	}
	FUZZ_CHECK(t.rank >= 1 && t.rank <= BN_TENSOR_MAX_RANK && t.count <= MAX_ELEMENTS);
	bn_buf_init(&out, 0);
	FUZZ_CHECK(bn_npy_write(&out, &t) == 0);
	r = bn_npy_read(out.data, out.len, MAX_ELEMENTS, &again, &err);
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(again.rank == t.rank && again.count == t.count);
	FUZZ_CHECK(memcmp(again.shape, t.shape, sizeof(t.shape)) == 0);
	FUZZ_CHECK(memcmp(again.data, t.data, t.count * sizeof(float)) == 0);
	bn_tensor_finish(&again);
	bn_tensor_finish(&t);
	bn_buf_finish(&out);
	return 0;
}
