/*
 * fuzz_json_input.c: the {"input": T} tensor body reader (bn/json.h).
 *
 * Accepted: the tensor written back in the form it came in and read again
 * is the same tensor, shape and values bit for bit. Refused: the output
 * tensor and form were not written, and the error says why.
 */
#include <errno.h>
#include <stdbool.h>

#include "bn/buf.h"
#include "bn/json.h"
#include "fuzz.h"

/* Small enough that no input runs the fuzzer out of memory. */
#define MAX_ELEMENTS (1u << 20)

static bool same_tensor(const struct bn_tensor *a, const struct bn_tensor *b)
{
	return a->rank == b->rank && a->count == b->count &&
		memcmp(a->shape, b->shape, sizeof(a->shape)) == 0 &&
		memcmp(a->data, b->data, a->count * sizeof(float)) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bn_tensor t, sentinel, again;
	enum bn_tensor_form form = (enum bn_tensor_form)77, form2;
	struct bn_error err = { 0 };
	struct bn_buf out;
	int r;

	memset(&t, 0xa5, sizeof(t));
	sentinel = t;
	r = bn_json_input_parse((const char *)data, size, MAX_ELEMENTS, &t, &form, &err);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -EINVAL || r == -E2BIG || r == -ENOMEM);
		FUZZ_CHECK(memcmp(&t, &sentinel, sizeof(t)) == 0);
		FUZZ_CHECK(form == (enum bn_tensor_form)77);
		FUZZ_CHECK_ERROR(&err);
		return 0;
	}
	FUZZ_CHECK(t.rank >= 1 && t.rank <= BN_TENSOR_MAX_RANK && t.count <= MAX_ELEMENTS);
	bn_buf_init(&out, 0);
	bn_buf_puts(&out, "{\"input\": ");
	bn_json_tensor_write(&out, &t, form);
	bn_buf_puts(&out, "}");
	FUZZ_CHECK(out.err == 0);
	r = bn_json_input_parse(out.data, out.len, MAX_ELEMENTS, &again, &form2, &err);
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(form2 == form);
	FUZZ_CHECK(same_tensor(&t, &again));
	bn_tensor_finish(&again);
	bn_tensor_finish(&t);
	bn_buf_finish(&out);
	return 0;
}
