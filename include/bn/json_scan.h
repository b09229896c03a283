/*
 * bn/json_scan.h: the strict JSON scanner under the tensor body reader, for
 * other small bodies that must read numbers the same way.
 *
 * bn_json_scan checks RFC 8259 grammar over the whole body in one pass with
 * no tree and no recursion, and hands each value, object key and close to
 * the caller's events as it meets them. Every number is given with its text
 * and its correctly rounded float32 (bn_float_parse), so a caller that
 * stores float32 rounds exactly as the tensor reader does, and one that
 * needs another type (an integer, a double) reads the text itself; no
 * number is ever refused for its size here.
 *
 * The events cannot stop the scan: a caller keeps its first semantic error
 * and ignores the rest, and the scan runs on to the end, so a syntax error
 * anywhere in the body is always reported (callers let it win).
 */
#ifndef BN_JSON_SCAN_H
#define BN_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "bn/error.h"

/* Keys are decoded to at most this many bytes; longer ones are cut and flagged. */
#define BN_JSON_KEY_MAX 48

enum bn_json_kind {
	BN_JSON_OBJECT,
	BN_JSON_ARRAY,
	BN_JSON_NUMBER,
	BN_JSON_STRING,
	BN_JSON_TRUE,
	BN_JSON_FALSE,
	BN_JSON_NULL,
};

/* A number as it stands in the body. */
struct bn_json_number {
	const char *text; /* its bytes in the body, not NUL-terminated */
	size_t len;
	float f;          /* correctly rounded float32, when r == 0 */
	int r;            /* 0, or -EINVAL: it is beyond float32 (f is then 0) */
};

struct bn_json_events {
	/*
	 * A value starts: a number (num set, else NULL), a string, a literal, or
	 * a container that is opened by this call and closed by a later close.
	 */
	void (*value)(void *ctx, enum bn_json_kind kind, const struct bn_json_number *num);
	/* A key of the innermost object, escapes decoded, cut to BN_JSON_KEY_MAX bytes. */
	void (*key)(void *ctx, const char *key, size_t len, bool truncated);
	/* The innermost open container closes. */
	void (*close)(void *ctx);
	/*
	 * Optional (both or neither): a run of numbers inside the innermost
	 * array, written straight where the caller keeps them. When the scan
	 * meets a number in an array it asks sink for room; NULL (or *room 0)
	 * means "one value event per number", as without these. Otherwise it
	 * writes each following number in float32's range there, up to *room
	 * of them, while they follow one another with commas, then calls done
	 * with how many it wrote (at least one), as if value had been called
	 * for each. Anything else (a number beyond float32, a non-number, the
	 * array's end) goes on as usual.
	 */
	float *(*sink)(void *ctx, size_t *room);
	void (*done)(void *ctx, size_t n);
};

/*
 * Scan body[0..len) as one JSON value, calling ev with ctx. Returns 0 when
 * it is valid JSON, -EBADMSG (BN_E_INVALID_JSON, "invalid JSON at byte 7:
 * expected ...") when it is not, or -ENOMEM; err is filled on failure.
 */
int bn_json_scan(const char *body, size_t len, const struct bn_json_events *ev, void *ctx,
		struct bn_error *err);

#endif
