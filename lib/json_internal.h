/*
 * json_internal.h: what the body reader's two layers and the writers share.
 *
 * json_read.c is the syntax layer: one loop over the bytes that checks
 * RFC 8259 grammar and keeps open containers on a bit stack. Each value,
 * key and close it meets goes to the semantic layer in json_body.c, which
 * follows the shapes a tensor body may take and stores the numbers. Both
 * work on one struct parser; neither is part of the library's API.
 */
#ifndef BN_JSON_INTERNAL_H
#define BN_JSON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn/json.h"

/* Semantic frames: the body, then up to five array levels. */
#define FRAMES_MAX (BN_TENSOR_MAX_RANK + 1)

enum role { R_BODY, R_INPUT_OBJ, R_NEST, R_SHAPE, R_DATA };
enum target { T_NONE, T_INPUT, T_SHAPE, T_DATA };
enum kind { K_OBJECT, K_ARRAY, K_NUMBER, K_STRING, K_TRUE, K_FALSE, K_NULL };

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

/*
 * The semantic layer. A value of kind k starts (a container before it is
 * pushed on the syntax stack); for a number, f is its float32 value, num_r
 * what bn_float_parse returned and tok, len its text. Each records the
 * first error in P->failed, P->sem_r and P->sem_err and is a no-op after.
 */
void bn_json_body_value(struct parser *P, enum kind k, float f, int num_r,
		const char *tok, size_t len);

/* A key of the innermost object, decoded; truncated when longer than was kept. */
void bn_json_body_key(struct parser *P, const char *key, size_t len, bool truncated);

/* The innermost container closes (before it leaves the syntax stack). */
void bn_json_body_close(struct parser *P);

/* Length of the valid UTF-8 sequence at p, or 0 (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
size_t bn_json_utf8_length(const unsigned char *p, const unsigned char *end);

#endif
