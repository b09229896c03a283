/*
 * json.c: the JSON tensor body reader and the JSON writers (bn/json.h).
 *
 * The reader is one loop over the bytes with an explicit stack, so nesting
 * depth costs a bit per level and never stack frames. Two layers share it:
 * the syntax layer checks RFC 8259 grammar to the last byte; the semantic
 * layer follows the few shapes a tensor body can take (the body object,
 * "input", nested arrays up to rank 5, or "shape" and "data") and stores
 * numbers straight into a growing float array. The first semantic error is
 * kept and the semantic layer then goes quiet, while the syntax layer runs
 * on: a syntax error anywhere wins, as the header promises.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/float.h"
#include "bn/json.h"

#define KEY_MAX 48
/* Semantic frames: the body, then up to five array levels. */
#define FRAMES_MAX (BN_TENSOR_MAX_RANK + 1)

enum role { R_BODY, R_INPUT_OBJ, R_NEST, R_SHAPE, R_DATA };
enum target { T_NONE, T_INPUT, T_SHAPE, T_DATA };
enum kind { K_OBJECT, K_ARRAY, K_NUMBER, K_STRING, K_TRUE, K_FALSE, K_NULL };

static const char *const kind_names[] = {
	"an object", "an array", "a number", "a string", "true", "false", "null",
};

struct frame {
	enum role role;
	unsigned level;     /* R_NEST: 0 for input itself */
	size_t n;           /* arrays: values so far */
	enum target target; /* objects: what the current key's value is */
};

struct parser {
	const char *start, *p, *end;
	/* Syntax: one bit per open container, set for an object. */
	uint8_t *open;
	size_t depth, open_cap;
	/* Semantics, quiet once failed. */
	bool failed;
	int sem_r;
	struct bn_error sem_err;
	struct frame frames[FRAMES_MAX];
	unsigned nframes;
	bool have_input, have_shape, have_data;
	enum bn_tensor_form form;
	unsigned rank;                          /* nested: 0 until the first number */
	size_t shape[BN_TENSOR_MAX_RANK];       /* nested: set by each level's first row */
	bool shape_set[BN_TENSOR_MAX_RANK];
	size_t product;                         /* shaped: of shape, once read */
	size_t data_n;                          /* shaped: values in data */
	float *data;
	size_t count, cap, max;
};

static int syntax(struct parser *P, const char *what)
{
	size_t at = (size_t)(P->p - P->start);
	char got[32];

	if (P->p >= P->end)
		snprintf(got, sizeof(got), "the end of the body");
	else if ((unsigned char)*P->p >= 0x20 && (unsigned char)*P->p < 0x7f)
		snprintf(got, sizeof(got), "'%c'", *P->p);
	else
		snprintf(got, sizeof(got), "byte 0x%02x", (unsigned char)*P->p);
	bn_error_set(&P->sem_err, BN_E_INVALID_JSON, "invalid JSON at byte %zu: expected %s, got %s",
			at, what, got);
	return -EBADMSG;
}

static int syntax_msg(struct parser *P, size_t at, const char *msg)
{
	bn_error_set(&P->sem_err, BN_E_INVALID_JSON, "invalid JSON at byte %zu: %s", at, msg);
	return -EBADMSG;
}

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

/* Append f to the tensor's values, growing geometrically up to limit. */
static bool store(struct parser *P, float f, size_t limit)
{
	if (P->count == P->cap) {
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
	}
	P->data[P->count++] = f;
	return true;
}

/* A value starts inside the nested array at level fr->level. */
static void nest_value(struct parser *P, struct frame *fr, enum kind k, float f, int num_r,
		const char *tok, size_t toklen)
{
	unsigned l = fr->level;
	size_t i = fr->n++;
	char path[96];

	if (k == K_ARRAY) {
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
	if (k != K_NUMBER) {
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
static void shape_value(struct parser *P, struct frame *fr, enum kind k, const char *tok, size_t len)
{
	size_t i = fr->n++, v = 0;

	if (i >= BN_TENSOR_MAX_RANK) {
		fail(P, -EINVAL, BN_E_BAD_RANK, "input.shape has more than %d dimensions; "
				"a tensor has rank 1 to %d", BN_TENSOR_MAX_RANK, BN_TENSOR_MAX_RANK);
		return;
	}
	if (k != K_NUMBER) {
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

static void data_value(struct parser *P, struct frame *fr, enum kind k, float f, int num_r,
		const char *tok, size_t len)
{
	size_t i = fr->n++;

	if (k != K_NUMBER) {
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
static void keyed_value(struct parser *P, struct frame *fr, enum kind k)
{
	switch (fr->target) {
	case T_INPUT:
		if (k == K_ARRAY) {
			P->form = BN_FORM_NESTED;
			P->frames[P->nframes++] = (struct frame){ .role = R_NEST };
		} else if (k == K_OBJECT) {
			P->form = BN_FORM_SHAPED;
			P->frames[P->nframes++] = (struct frame){ .role = R_INPUT_OBJ };
		} else if (k == K_NUMBER) {
			fail(P, -EINVAL, BN_E_BAD_RANK, "input: expected a tensor of rank 1 to %d, "
					"got a number (rank 0)", BN_TENSOR_MAX_RANK);
		} else {
			fail(P, -EINVAL, BN_E_WRONG_TYPE, "input: expected nested arrays or "
					"{\"shape\": [...], \"data\": [...]}, got %s", kind_names[k]);
		}
		break;
	case T_SHAPE:
		if (k == K_ARRAY)
			P->frames[P->nframes++] = (struct frame){ .role = R_SHAPE };
		else
			fail(P, -EINVAL, BN_E_WRONG_TYPE, "input.shape: expected an array of "
					"dimensions, got %s", kind_names[k]);
		break;
	case T_DATA:
		if (k == K_ARRAY)
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
static void sem_value(struct parser *P, enum kind k, float f, int num_r, const char *tok, size_t len)
{
	struct frame *fr;

	if (P->failed)
		return;
	if (!P->nframes) {
		if (k == K_OBJECT)
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

static void sem_key(struct parser *P, const char *key, size_t len, bool truncated)
{
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
static void sem_close(struct parser *P)
{
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

static bool push(struct parser *P, bool object)
{
	if (P->depth / 8 >= P->open_cap) {
		size_t cap = P->open_cap ? P->open_cap * 2 : 64;
		uint8_t *o = realloc(P->open, cap);

		if (!o)
			return false;
		P->open = o;
		P->open_cap = cap;
	}
	if (object)
		P->open[P->depth / 8] |= (uint8_t)(1u << (P->depth % 8));
	else
		P->open[P->depth / 8] &= (uint8_t)~(1u << (P->depth % 8));
	P->depth++;
	return true;
}

static bool top_is_object(const struct parser *P)
{
	size_t d = P->depth - 1;

	return P->open[d / 8] >> (d % 8) & 1;
}

static void skip_ws(struct parser *P)
{
	while (P->p < P->end && (*P->p == ' ' || *P->p == '\n' || *P->p == '\r' || *P->p == '\t'))
		P->p++;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Length of the valid UTF-8 sequence at p, or 0 (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
static size_t utf8_length(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* Put one decoded code point of a key into key[], UTF-8, noting truncation. */
static void key_put(char *key, size_t *len, bool *truncated, unsigned cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	if (*len + n > KEY_MAX) {
		*truncated = true;
		return;
	}
	memcpy(key + *len, u, n);
	*len += n;
}

/*
 * Scan a string starting at its opening quote. With key non-NULL, decode it
 * (escapes resolved, at most KEY_MAX bytes) for comparing.
 */
static int scan_string(struct parser *P, char *key, size_t *key_len, bool *truncated)
{
	const unsigned char *p = (const unsigned char *)P->p + 1;
	const unsigned char *end = (const unsigned char *)P->end;

	for (;;) {
		const unsigned char *run = p;

		while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80)
			p++;
		if (key) {
			for (const unsigned char *q = run; q < p; q++)
				key_put(key, key_len, truncated, *q);
		}
		P->p = (const char *)p;
		if (p == end)
			return syntax(P, "'\"' to close the string");
		if (*p == '"') {
			P->p++;
			return 0;
		}
		if (*p < 0x20)
			return syntax(P, "a string character (control characters must be escaped)");
		if (*p >= 0x80) {
			size_t n = utf8_length(p, end);

			if (!n)
				return syntax_msg(P, (size_t)(P->p - P->start), "a string is not valid UTF-8");
			if (key) {
				if (*key_len + n > KEY_MAX)
					*truncated = true;
				else
					memcpy(key + *key_len, p, n);
				if (!*truncated)
					*key_len += n;
			}
			p += n;
			continue;
		}
		/* A backslash. */
		if (end - p < 2) {
			P->p = (const char *)p + 1;
			return syntax(P, "an escape character");
		}
		switch (p[1]) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			if (key) {
				static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
				key_put(key, key_len, truncated,
						(unsigned char)to[strchr(from, p[1]) - from]);
			}
			p += 2;
			break;
		case 'u': {
			unsigned cp = 0;

			for (int i = 2; i < 6; i++) {
				int h = end - p > i ? hex_value((char)p[i]) : -1;

				if (h < 0) {
					P->p = (const char *)p + i;
					return syntax(P, "four hex digits after \\u");
				}
				cp = cp << 4 | (unsigned)h;
			}
			if (key)
				key_put(key, key_len, truncated, cp);
			p += 6;
			break;
		}
		default:
			P->p = (const char *)p + 1;
			return syntax(P, "an escape character (one of \"\\/bfnrtu)");
		}
	}
}

/* An object key and its colon; the object is open and the key must follow. */
static int scan_key(struct parser *P)
{
	char key[KEY_MAX];
	size_t len = 0;
	bool truncated = false;
	int r;

	skip_ws(P);
	if (P->p == P->end || *P->p != '"')
		return syntax(P, "'\"' to start a key");
	r = scan_string(P, key, &len, &truncated);
	if (r < 0)
		return r;
	skip_ws(P);
	if (P->p == P->end || *P->p != ':')
		return syntax(P, "':' after the key");
	P->p++;
	sem_key(P, key, len, truncated);
	return 0;
}

static bool starts_with(const struct parser *P, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(P->end - P->p) >= n && memcmp(P->p, word, n) == 0;
}

/* A scalar that is not a string: a number, true, false or null. */
static int scan_scalar(struct parser *P)
{
	static const struct { const char *word; enum kind kind; } words[] = {
		{ "true", K_TRUE }, { "false", K_FALSE }, { "null", K_NULL },
	};
	const char *tok = P->p;
	float f = 0;
	int r;

	for (size_t i = 0; *tok >= 'a' && i < sizeof(words) / sizeof(words[0]); i++) {
		if (starts_with(P, words[i].word)) {
			P->p += strlen(words[i].word);
			sem_value(P, words[i].kind, 0, 0, NULL, 0);
			return 0;
		}
	}
	if ((*tok == 'N' || *tok == 'I' || *tok == '-') && (starts_with(P, "NaN")
			|| starts_with(P, "Infinity") || starts_with(P, "-Infinity")))
		return syntax_msg(P, (size_t)(P->p - P->start), "NaN and Infinity are not JSON; "
				"a tensor holds finite numbers only");
	while (P->p < P->end && ((*P->p >= '0' && *P->p <= '9') || *P->p == '-' || *P->p == '+'
			|| *P->p == '.' || *P->p == 'e' || *P->p == 'E'))
		P->p++;
	if (P->p == tok)
		return syntax(P, "a value");
	r = bn_float_parse(tok, (size_t)(P->p - tok), &f, NULL);
	if (r == -EBADMSG) {
		size_t len = (size_t)(P->p - tok);

		bn_error_set(&P->sem_err, BN_E_INVALID_JSON, "invalid JSON at byte %zu: "
				"%.*s%s is not a JSON number", (size_t)(tok - P->start),
				len > 40 ? 40 : (int)len, tok, len > 40 ? "..." : "");
		return -EBADMSG;
	}
	if (r == -ENOMEM) {
		bn_error_set(&P->sem_err, BN_E_NO_MEMORY, "out of memory reading a number");
		return r;
	}
	sem_value(P, K_NUMBER, f, r, tok, (size_t)(P->p - tok));
	return 0;
}

/* A value starts at P->p (whitespace skipped). Containers are opened, not finished. */
static int scan_value(struct parser *P, bool *opened)
{
	char c = *P->p;

	*opened = false;
	if (c == '{' || c == '[') {
		sem_value(P, c == '{' ? K_OBJECT : K_ARRAY, 0, 0, NULL, 0);
		if (!push(P, c == '{')) {
			bn_error_set(&P->sem_err, BN_E_NO_MEMORY, "out of memory for nesting");
			return -ENOMEM;
		}
		P->p++;
		*opened = true;
		return 0;
	}
	if (c == '"') {
		int r = scan_string(P, NULL, NULL, NULL);

		if (r == 0)
			sem_value(P, K_STRING, 0, 0, NULL, 0);
		return r;
	}
	return scan_scalar(P);
}

/* Close the container at P->p (its bracket checked by the caller). */
static void close_container(struct parser *P)
{
	P->p++;
	sem_close(P);
	P->depth--;
}

static int parse(struct parser *P)
{
	bool opened;
	int r;

	skip_ws(P);
	for (;;) {
		/* Here a value must start. */
		if (P->p == P->end)
			return syntax(P, "a value");
		r = scan_value(P, &opened);
		if (r < 0)
			return r;
		if (opened) {
			skip_ws(P);
			if (P->p < P->end && *P->p == (top_is_object(P) ? '}' : ']'))
				close_container(P);
			else if (top_is_object(P) && (r = scan_key(P)) < 0)
				return r;
			else
				goto next_value;
		}
		/* After a value: a comma, a close, or the end of the body. */
		for (;;) {
			skip_ws(P);
			if (!P->depth) {
				if (P->p != P->end)
					return syntax(P, "the end of the body after the value");
				return 0;
			}
			if (P->p < P->end && *P->p == ',') {
				P->p++;
				if (top_is_object(P) && (r = scan_key(P)) < 0)
					return r;
				break;
			}
			if (P->p < P->end && *P->p == (top_is_object(P) ? '}' : ']'))
				close_container(P);
			else
				return syntax(P, top_is_object(P) ? "',' or '}'" : "',' or ']'");
		}
next_value:
		skip_ws(P);
	}
}

int bn_json_input_parse(const char *body, size_t len, size_t max_elements,
		struct bn_tensor *ret, enum bn_tensor_form *ret_form, struct bn_error *err)
{
	struct parser P = { .start = body, .p = body, .end = body + len, .max = max_elements };
	size_t count = 1;
	int r;

	r = parse(&P);
	free(P.open);
	if (r == 0 && P.failed)
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

/* Room for one more value and its separator, written in place. */
#define VALUE_ROOM (BN_FLOAT_STR_MAX + 2)

/* Append v[0..n) separated by ", ", without brackets. */
static int write_values(struct bn_buf *out, const float *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *p;

		if (out->err)
			return out->err;
		if (out->cap - out->len < VALUE_ROOM + 1) {
			/* Most values take about 12 bytes: reserve for the rest, but never past the cap. */
			size_t want = (n - i) < SIZE_MAX / 16 ? (n - i) * 12 + VALUE_ROOM : SIZE_MAX;

			if (want > out->max - out->len)
				want = out->max - out->len;
			if (bn_buf_reserve(out, want) < 0)
				return out->err;
		}
		if (out->cap - out->len < VALUE_ROOM + 1) {
			/* Near the cap: append exactly, so the cap is hit only when really passed. */
			char tmp[VALUE_ROOM + 1];
			size_t len = 0;

			if (i)
				memcpy(tmp, ", ", 2), len = 2;
			len += bn_float_format(v[i], tmp + len);
			if (bn_buf_append(out, tmp, len) < 0)
				return out->err;
			continue;
		}
		p = out->data + out->len;
		if (i) {
			memcpy(p, ", ", 2);
			p += 2;
		}
		p += bn_float_format(v[i], p);
		out->len = (size_t)(p - out->data);
	}
	return out->err;
}

int bn_json_floats_write(struct bn_buf *out, const float *v, size_t n)
{
	bn_buf_append(out, "[", 1);
	write_values(out, v, n);
	return bn_buf_append(out, "]", 1);
}

static void repeat(struct bn_buf *out, char c, size_t n)
{
	char s[BN_TENSOR_MAX_RANK];

	memset(s, c, n);
	bn_buf_append(out, s, n);
}

int bn_json_tensor_write(struct bn_buf *out, const struct bn_tensor *t, enum bn_tensor_form form)
{
	size_t row, rows;

	if (form == BN_FORM_SHAPED) {
		char shape[128];

		bn_tensor_shape_str(t, shape, sizeof(shape));
		bn_buf_puts(out, "{\"shape\": ");
		bn_buf_puts(out, shape);
		bn_buf_puts(out, ", \"data\": ");
		bn_json_floats_write(out, t->data, t->count);
		return bn_buf_append(out, "}", 1);
	}
	row = t->shape[t->rank - 1];
	rows = t->count / row;
	repeat(out, '[', t->rank);
	for (size_t r = 0; r < rows; r++) {
		if (r) {
			/* Close and reopen one level, plus one per outer dimension that wraps here. */
			size_t k = 1, m = r;

			for (unsigned d = t->rank - 1; d-- > 1 && m % t->shape[d] == 0; k++)
				m /= t->shape[d];
			repeat(out, ']', k);
			bn_buf_append(out, ", ", 2);
			repeat(out, '[', k);
		}
		write_values(out, t->data + r * row, row);
	}
	repeat(out, ']', t->rank);
	return out->err;
}

int bn_json_string_write(struct bn_buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);

	bn_buf_append(out, "\"", 1);
	while (p < end) {
		const unsigned char *run = p;
		size_t n;

		while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80)
			p++;
		bn_buf_append(out, run, (size_t)(p - run));
		if (p == end)
			break;
		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p++ };

			bn_buf_append(out, esc, 2);
		} else if (*p < 0x20) {
			bn_buf_printf(out, "\\u%04x", *p++);
		} else if ((n = utf8_length(p, end)) > 0) {
			bn_buf_append(out, p, n);
			p += n;
		} else {
			/* Not UTF-8: the replacement character keeps the output valid JSON. */
			bn_buf_puts(out, "\\ufffd");
			p++;
		}
	}
	return bn_buf_append(out, "\"", 1);
}
