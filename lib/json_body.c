/*
 * json_body.c: the semantic layer of the {"input": T} reader (bn/json.h).
 *
 * json_read.c hands over each value, key and close as it meets them, through
 * bn_json_body_events; this
 * file follows the few shapes a tensor body can take (the body object,
 * "input", nested arrays up to rank 5, or "shape" and "data") and stores
 * numbers straight into a growing float array (runs of them written there
 * by the syntax layer itself, through body_sink). bn_json_input_parse, at
 * the end, runs the two layers over a body. The first error is kept
 * and this layer then goes quiet, while the syntax layer runs on, so a
 * syntax error later in the body still wins. Details name the place, and
 * a value's path is built only when an error is reported.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_internal.h"

static const char *const kind_names[] = {
	"an object", "an array", "a number", "a string", "true", "false", "null",
};

__attribute__((format(printf, 4, 5)))
static void fail(struct parser *P, int r, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (P->failed)
		return;
	P->failed = true;
	P->sem_r = r;
	P->sem_err.code = code;
	va_start(ap, fmt);
	vsnprintf(P->sem_err.detail, sizeof(P->sem_err.detail), fmt, ap);
	va_end(ap);
}

/* "input[1][0]" for the open nested arrays down to and including level. */
static void nest_path(const struct parser *P, unsigned levels, char *out, size_t size)
{
	size_t len = (size_t)snprintf(out, size, "input");

	for (unsigned l = 0; l < levels && len < size; l++)
		len += (size_t)snprintf(out + len, size - len, "[%zu]", P->frames[l + 1].n - 1);
}

static const char *plural(size_t n)
{
	return n == 1 ? "" : "s";
}

/* Grow the tensor's values geometrically, up to limit (above P->cap). */
static bool store_grow(struct parser *P, size_t limit)
{
	size_t cap = P->cap ? P->cap * 2 : 1024;
	float *d;

	if (cap > limit)
		cap = limit;
	d = realloc(P->data, cap * sizeof(*d));
	if (!d) {
		fail(P, -ENOMEM, BN_E_NO_MEMORY, "out of memory for %zu values", cap);
		return false;
	}
	P->data = d;
	P->cap = cap;
	return true;
}

/* Append f to the tensor's values, growing geometrically up to limit. */
static bool store(struct parser *P, float f, size_t limit)
{
	if (P->count == P->cap && !store_grow(P, limit))
		return false;
	P->data[P->count++] = f;
	return true;
}

/* A value starts inside the nested array at level fr->level. */
static void nest_value(struct parser *P, struct frame *fr, enum bn_json_kind k, float f, int num_r,
		const char *tok, size_t toklen)
{
	unsigned l = fr->level;
	size_t i = fr->n++;
	char path[96];

	if (k == BN_JSON_ARRAY) {
		if (P->rank && l + 1 >= P->rank) {
			nest_path(P, l, path, sizeof(path));
			fail(P, -EINVAL, BN_E_RAGGED, "%s: ragged array, element %zu is an array, "
					"where other rows hold numbers", path, i);
		} else if (l + 1 >= BN_TENSOR_MAX_RANK) {
			nest_path(P, l + 1, path, sizeof(path));
			fail(P, -EINVAL, BN_E_BAD_RANK, "%s: arrays nested deeper than %d levels; "
					"a tensor has rank 1 to %d", path, BN_TENSOR_MAX_RANK,
					BN_TENSOR_MAX_RANK);
		} else {
			P->frames[P->nframes++] = (struct frame){ .role = R_NEST, .level = l + 1 };
		}
		return;
	}
	if (k != BN_JSON_NUMBER) {
		nest_path(P, l + 1, path, sizeof(path));
		fail(P, -EINVAL, BN_E_WRONG_TYPE, "%s: expected %s, got %s", path,
				!P->rank || l + 1 == P->rank ? "a number" : "an array", kind_names[k]);
		return;
	}
	if (!P->rank)
		P->rank = l + 1;
	if (l + 1 != P->rank) {
		nest_path(P, l, path, sizeof(path));
		fail(P, -EINVAL, BN_E_RAGGED, "%s: ragged array, element %zu is a number, "
				"where other rows hold arrays", path, i);
	} else if (num_r < 0) {
		nest_path(P, l + 1, path, sizeof(path));
		fail(P, -EINVAL, BN_E_OUT_OF_RANGE, "%s: value %.*s%s is beyond float32", path,
				toklen > 40 ? 40 : (int)toklen, tok, toklen > 40 ? "..." : "");
	} else if (P->count >= P->max) {
		fail(P, -E2BIG, BN_E_TOO_LARGE, "input has more than %zu elements", P->max);
	} else {
		store(P, f, P->max);
	}
}

/* A nested array at fr->level closes with fr->n values. */
static void nest_close(struct parser *P, const struct frame *fr)
{
	unsigned l = fr->level;
	char path[96];

	if (fr->n == 0) {
		nest_path(P, l, path, sizeof(path));
		fail(P, -EINVAL, BN_E_EMPTY_DIMENSION, "%s: empty array; no dimension may be 0", path);
	} else if (!P->shape_set[l]) {
		P->shape[l] = fr->n;
		P->shape_set[l] = true;
	} else if (P->shape[l] != fr->n) {
		size_t row = P->frames[l].n - 1;

		nest_path(P, l - 1, path, sizeof(path));
		if (row)
			fail(P, -EINVAL, BN_E_RAGGED, "%s: ragged array, row %zu has %zu element%s, "
					"row 0 has %zu", path, row, fr->n, plural(fr->n), P->shape[l]);
		else
			fail(P, -EINVAL, BN_E_RAGGED, "%s: ragged array, row 0 has %zu element%s, "
					"earlier rows have %zu", path, fr->n, plural(fr->n), P->shape[l]);
	}
}

/* A shape entry: a positive integer, written as one. */
static void shape_value(struct parser *P, struct frame *fr, enum bn_json_kind k, const char *tok, size_t len)
{
	size_t i = fr->n++, v = 0;

	if (i >= BN_TENSOR_MAX_RANK) {
		fail(P, -EINVAL, BN_E_BAD_RANK, "input.shape has more than %d dimensions; "
				"a tensor has rank 1 to %d", BN_TENSOR_MAX_RANK, BN_TENSOR_MAX_RANK);
		return;
	}
	if (k != BN_JSON_NUMBER) {
		fail(P, -EINVAL, BN_E_WRONG_TYPE, "input.shape[%zu]: expected a positive integer, got %s",
				i, kind_names[k]);
		return;
	}
	for (size_t j = 0; j < len; j++) {
		if (tok[j] < '0' || tok[j] > '9') {
			fail(P, -EINVAL, BN_E_WRONG_TYPE, "input.shape[%zu]: expected a positive integer, "
					"got %.*s", i, len > 40 ? 40 : (int)len, tok);
			return;
		}
		if (v > (SIZE_MAX - 9) / 10) {
			fail(P, -E2BIG, BN_E_TOO_LARGE, "input.shape[%zu] is larger than %zu elements",
					i, P->max);
			return;
		}
		v = v * 10 + (size_t)(tok[j] - '0');
	}
	if (v == 0)
		fail(P, -EINVAL, BN_E_EMPTY_DIMENSION, "input.shape[%zu] is 0; no dimension may be 0", i);
	else
		P->shape[i] = v;
}

static void shape_close(struct parser *P, const struct frame *fr)
{
	size_t product = 1;

	if (fr->n == 0) {
		fail(P, -EINVAL, BN_E_BAD_RANK, "input.shape is empty (rank 0); a tensor has rank 1 to %d",
				BN_TENSOR_MAX_RANK);
		return;
	}
	/* Decided here, before any data is kept. */
	for (size_t i = 0; i < fr->n; i++) {
		if (P->shape[i] > P->max / product) {
			fail(P, -E2BIG, BN_E_TOO_LARGE, "input.shape has more than %zu elements", P->max);
			return;
		}
		product *= P->shape[i];
	}
	P->rank = (unsigned)fr->n;
	P->product = product;
	P->have_shape = true;
}

static void data_value(struct parser *P, struct frame *fr, enum bn_json_kind k, float f, int num_r,
		const char *tok, size_t len)
{
	size_t i = fr->n++;

	if (k != BN_JSON_NUMBER) {
		fail(P, -EINVAL, BN_E_WRONG_TYPE, "input.data[%zu]: expected a number, got %s",
				i, kind_names[k]);
	} else if (num_r < 0) {
		fail(P, -EINVAL, BN_E_OUT_OF_RANGE, "input.data[%zu]: value %.*s%s is beyond float32",
				i, len > 40 ? 40 : (int)len, tok, len > 40 ? "..." : "");
	} else if (P->have_shape) {
		/* Past the shape's count only the count matters, for the message. */
		if (i < P->product)
			store(P, f, P->product);
	} else if (P->count >= P->max) {
		fail(P, -E2BIG, BN_E_TOO_LARGE, "input.data has more than %zu elements", P->max);
	} else {
		store(P, f, P->max);
	}
}

/* The value for a key of the body or of input. */
static void keyed_value(struct parser *P, struct frame *fr, enum bn_json_kind k)
{
	switch (fr->target) {
	case T_INPUT:
		if (k == BN_JSON_ARRAY) {
			P->form = BN_FORM_NESTED;
			P->frames[P->nframes++] = (struct frame){ .role = R_NEST };
		} else if (k == BN_JSON_OBJECT) {
			P->form = BN_FORM_SHAPED;
			P->frames[P->nframes++] = (struct frame){ .role = R_INPUT_OBJ };
		} else if (k == BN_JSON_NUMBER) {
			fail(P, -EINVAL, BN_E_BAD_RANK, "input: expected a tensor of rank 1 to %d, "
					"got a number (rank 0)", BN_TENSOR_MAX_RANK);
		} else {
			fail(P, -EINVAL, BN_E_WRONG_TYPE, "input: expected nested arrays or "
					"{\"shape\": [...], \"data\": [...]}, got %s", kind_names[k]);
		}
		break;
	case T_SHAPE:
		if (k == BN_JSON_ARRAY)
			P->frames[P->nframes++] = (struct frame){ .role = R_SHAPE };
		else
			fail(P, -EINVAL, BN_E_WRONG_TYPE, "input.shape: expected an array of "
					"dimensions, got %s", kind_names[k]);
		break;
	case T_DATA:
		if (k == BN_JSON_ARRAY)
			P->frames[P->nframes++] = (struct frame){ .role = R_DATA };
		else
			fail(P, -EINVAL, BN_E_WRONG_TYPE, "input.data: expected an array of numbers, "
					"got %s", kind_names[k]);
		break;
	case T_NONE:
		break;
	}
}

/* A value starts (a container is not pushed on the syntax stack yet). */
static void body_value(void *ctx, enum bn_json_kind k, const struct bn_json_number *num)
{
	struct parser *P = ctx;
	float f = num ? num->f : 0;
	int num_r = num ? num->r : 0;
	const char *tok = num ? num->text : NULL;
	size_t len = num ? num->len : 0;
	struct frame *fr;

	if (P->failed)
		return;
	if (!P->nframes) {
		if (k == BN_JSON_OBJECT)
			P->frames[P->nframes++] = (struct frame){ .role = R_BODY };
		else
			fail(P, -EINVAL, BN_E_WRONG_TYPE, "the body must be an object {\"input\": ...}, "
					"got %s", kind_names[k]);
		return;
	}
	fr = &P->frames[P->nframes - 1];
	switch (fr->role) {
	case R_BODY:
	case R_INPUT_OBJ:
		keyed_value(P, fr, k);
		break;
	case R_NEST:
		nest_value(P, fr, k, f, num_r, tok, len);
		break;
	case R_SHAPE:
		shape_value(P, fr, k, tok, len);
		break;
	case R_DATA:
		data_value(P, fr, k, f, num_r, tok, len);
		break;
	}
}

static void body_key(void *ctx, const char *key, size_t len, bool truncated)
{
	struct parser *P = ctx;
	struct frame *fr;
	bool *seen = NULL;
	enum target t = T_NONE;

	if (P->failed)
		return;
	fr = &P->frames[P->nframes - 1];
	if (fr->role == R_BODY && !truncated && len == 5 && memcmp(key, "input", 5) == 0) {
		seen = &P->have_input;
		t = T_INPUT;
	} else if (fr->role == R_INPUT_OBJ && !truncated && len == 5 && memcmp(key, "shape", 5) == 0) {
		seen = &P->have_shape;
		t = T_SHAPE;
	} else if (fr->role == R_INPUT_OBJ && !truncated && len == 4 && memcmp(key, "data", 4) == 0) {
		seen = &P->have_data;
		t = T_DATA;
	}
	if (!seen) {
		fail(P, -EINVAL, BN_E_UNKNOWN_KEY, "unknown key \"%.*s%s\"%s; expected %s",
				(int)len, key, truncated ? "..." : "",
				fr->role == R_BODY ? "" : " in input",
				fr->role == R_BODY ? "\"input\"" : "\"shape\" and \"data\"");
	} else if (*seen) {
		fail(P, -EINVAL, BN_E_UNKNOWN_KEY, "duplicate key \"%.*s\"", (int)len, key);
	} else {
		/* shape is marked when it is read whole; data when its array opens. */
		if (t != T_SHAPE)
			*seen = true;
		fr->target = t;
	}
}

/* A container closes (before it leaves the syntax stack). */
static void body_close(void *ctx)
{
	struct parser *P = ctx;
	struct frame fr;

	if (P->failed)
		return;
	fr = P->frames[--P->nframes];
	switch (fr.role) {
	case R_BODY:
		if (!P->have_input)
			fail(P, -EINVAL, BN_E_MISSING_INPUT, "the body has no \"input\" key");
		break;
	case R_INPUT_OBJ:
		if (!P->have_shape || !P->have_data) {
			fail(P, -EINVAL, BN_E_MISSING_INPUT, "input: missing \"%s\"; expected "
					"{\"shape\": [...], \"data\": [...]}", P->have_shape ? "data" : "shape");
		} else if (P->data_n != P->product) {
			struct bn_tensor t = { .rank = P->rank };
			char shape[96];

			memcpy(t.shape, P->shape, sizeof(t.shape));
			bn_tensor_shape_str(&t, shape, sizeof(shape));
			fail(P, -EINVAL, BN_E_SHAPE_MISMATCH, "shape %s has %zu element%s, data has %zu",
					shape, P->product, plural(P->product), P->data_n);
		}
		break;
	case R_NEST:
		nest_close(P, &fr);
		break;
	case R_SHAPE:
		shape_close(P, &fr);
		break;
	case R_DATA:
		P->data_n = fr.n;
		if (fr.n == 0)
			fail(P, -EINVAL, BN_E_EMPTY_DIMENSION, "input.data is empty; no dimension may be 0");
		break;
	}
}

/*
 * Room for a run of numbers where nest_value and data_value would store
 * each one without a word to say: in a nested array at the level that holds
 * numbers, or in data before its shape's count or the cap. Anywhere else
 * (the first number, which sets the rank, a shape, an error) there is none.
 */
static float *body_sink(void *ctx, size_t *room)
{
	struct parser *P = ctx;
	struct frame *fr;
	size_t limit;

	if (P->failed || !P->nframes)
		return NULL;
	fr = &P->frames[P->nframes - 1];
	if (fr->role == R_NEST && P->rank && fr->level + 1 == P->rank)
		limit = P->max;
	else if (fr->role == R_DATA)
		limit = P->have_shape ? P->product : P->max;
	else
		return NULL;
	if (P->count >= limit)
		return NULL;
	if (P->count == P->cap && !store_grow(P, limit))
		return NULL;
	/* store_grow grew the storage for this same limit, so room never passes it. */
	*room = P->cap - P->count;
	return P->data + P->count;
}

static void body_done(void *ctx, size_t n)
{
	struct parser *P = ctx;

	P->count += n;
	P->frames[P->nframes - 1].n += n;
}

const struct bn_json_events bn_json_body_events = {
	.value = body_value,
	.key = body_key,
	.close = body_close,
	.sink = body_sink,
	.done = body_done,
};

int bn_json_input_parse(const char *body, size_t len, size_t max_elements,
		struct bn_tensor *ret, enum bn_tensor_form *ret_form, struct bn_error *err)
{
	struct parser P = { .max = max_elements };
	struct bn_error syntax_err;
	size_t count = 1;
	int r;

	r = bn_json_scan(body, len, &bn_json_body_events, &P, &syntax_err);
	if (r < 0)
		P.sem_err = syntax_err;
	else if (P.failed)
		r = P.sem_r;
	if (r == 0 && P.form == BN_FORM_NESTED) {
		for (unsigned i = 0; i < P.rank; i++)
			count *= P.shape[i];
		/* Ragged rows were refused above, so this is a check of the reader itself. */
		if (count != P.count) {
			bn_error_set(&P.sem_err, BN_E_RAGGED, "input: ragged array");
			r = -EINVAL;
		}
	}
	if (r < 0) {
		if (err)
			*err = P.sem_err;
		free(P.data);
		return r;
	}
	if (P.cap > P.count) {
		float *d = realloc(P.data, P.count * sizeof(float));

		if (d)
			P.data = d;
	}
	*ret = (struct bn_tensor){ .rank = P.rank, .count = P.count, .data = P.data };
	memcpy(ret->shape, P.shape, sizeof(ret->shape));
	*ret_form = P.form;
	return 0;
}
