/*
 * json_internal.h: what the body reader's two layers and the writers share.
 *
 * json_read.c is the syntax layer (bn_json_scan, bn/json_scan.h): one loop
 * over the bytes that checks RFC 8259 grammar and keeps open containers on
 * a bit stack. Each value, key and close it meets goes to the semantic
 * layer in json_body.c through bn_json_body_events, which follows the
 * shapes a tensor body may take and stores the numbers in a struct parser.
 * Neither struct parser nor the events are part of the library's API.
 */
#ifndef BN_JSON_INTERNAL_H
#define BN_JSON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn/json.h"
#include "bn/json_scan.h"

/* Semantic frames: the body, then up to five array levels. */
#define FRAMES_MAX (BN_TENSOR_MAX_RANK + 1)

enum role { R_BODY, R_INPUT_OBJ, R_NEST, R_SHAPE, R_DATA };
enum target { T_NONE, T_INPUT, T_SHAPE, T_DATA };

struct frame {
	enum role role;
	unsigned level;     /* R_NEST: 0 for input itself */
	size_t n;           /* arrays: values so far */
	enum target target; /* objects: what the current key's value is */
};

/* The semantic layer's state, quiet once failed. */
struct parser {
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
 * The semantic layer's events, with a struct parser as their context. Each
 * records the first error in P->failed, P->sem_r and P->sem_err and is a
 * no-op after; a number beyond float32 is an error of the value's place.
 */
extern const struct bn_json_events bn_json_body_events;

/* Length of the valid UTF-8 sequence at p, or 0 (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
size_t bn_json_utf8_length(const unsigned char *p, const unsigned char *end);

#endif
