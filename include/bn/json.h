/*
 * bn/json.h: the JSON forms of a tensor, read fast and written exactly.
 *
 * A request body is {"input": T} where T is either nested arrays (what
 * x.tolist() gives) or {"shape": [...], "data": [flat, row-major]}. The
 * reader is a single pass over the bytes straight into float32 storage,
 * with no intermediate tree, so a 64 MiB body costs the tensor and little
 * more. It takes strict JSON (RFC 8259): duplicate keys are refused, and so
 * is any key but the ones named. A body that is not JSON at all is
 * -EBADMSG even when a semantic error comes earlier in it, so a client
 * always learns the most basic thing that is wrong.
 *
 * Details name the place: "input[1][0][2]: expected a number, got a string",
 * "input: ragged array, row 3 has 4 elements, row 0 has 5",
 * "input.data[7]: value 1e39 is beyond float32".
 *
 * The writers append to a struct bn_buf and print float32 with bn_float_format.
 */
#ifndef BN_JSON_H
#define BN_JSON_H

#include <stddef.h>

#include "bn/buf.h"
#include "bn/error.h"
#include "bn/tensor.h"

enum bn_tensor_form {
	BN_FORM_NESTED, /* [[...], ...] */
	BN_FORM_SHAPED, /* {"shape": [...], "data": [...]} */
};

/*
 * Parse a whole request body {"input": T} into a freshly allocated *ret
 * (rank 1..BN_TENSOR_MAX_RANK, finite float32 values, no zero dimension,
 * at most max_elements elements) and the form T was in. Errors: -EBADMSG
 * (not JSON), -EINVAL (a JSON that is not a valid tensor body), -E2BIG
 * (more than max_elements). Nesting deeper than the rank cap is -EINVAL
 * (BN_E_BAD_RANK) found without recursion, so no depth can exhaust the stack.
 * *ret and *ret_form are written only on success.
 */
int bn_json_input_parse(const char *body, size_t len, size_t max_elements,
		struct bn_tensor *ret, enum bn_tensor_form *ret_form, struct bn_error *err);

/* Append T in the given form: nested arrays, or {"shape": [...], "data": [...]}. */
int bn_json_tensor_write(struct bn_buf *out, const struct bn_tensor *t, enum bn_tensor_form form);

/* Append a JSON array of n float32 values: [0.5, 1.0]. */
int bn_json_floats_write(struct bn_buf *out, const float *v, size_t n);

/* Append s as a quoted, escaped JSON string. */
int bn_json_string_write(struct bn_buf *out, const char *s);

#endif
