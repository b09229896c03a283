/*
 * codec_ops.h: the bodies of calibration, SyncBatchNorm train and backward.
 *
 *   {"count": n, "mean": [C], "var": [C]}        a worker's summary
 *   {"stats": [{"count", "mean", "var"}, ...]}    per-worker statistics
 *   {"input": T, "grad_output": T, "mode": ...}   a backward request
 *
 * Summaries are small and parsed with jansson (duplicate keys refused) under
 * BND_STATS_BODY_MAX bytes; a backward body's tensors go through the
 * library's streaming tensor reader, one key at a time. Errors fill a
 * struct bn_error naming the field: -EBADMSG when the JSON does not parse,
 * -EINVAL for a value that is not valid, -E2BIG past a cap.
 */
#ifndef BND_CODEC_OPS_H
#define BND_CODEC_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn/error.h"
#include "bn/json.h"
#include "bn/stats.h"
#include "bn/tensor.h"

/* A summary or stats body is read as a JSON tree: at most this many bytes. */
#define BND_STATS_BODY_MAX ((size_t)4 << 20)
/* Entries of "stats" in one SyncBatchNorm train body. */
#define BND_MAX_WORKERS 4096

/*
 * The most memory reading a summary or stats body of len bytes takes: the
 * JSON tree (a number takes at least 2 bytes of text, "0,", and at most
 * about 56 bytes in the tree with its array slot) and the doubles read out.
 */
size_t bnd_stats_parse_max(size_t len);

/*
 * The most memory reading a backward body of len bytes takes: a copy of
 * each tensor's text and the decoded values of both (a value takes at least
 * 2 bytes of text).
 */
size_t bnd_backward_parse_max(size_t len);

/* Per-worker statistics parsed from a body; free with bnd_workers_free(). */
struct bnd_workers {
	size_t n;
	struct bn_worker_stats *w;
	double *values; /* 2 * C * n: each worker's mean then var */
};

/*
 * Parse {"count": n, "mean": [C], "var": [C]}: count an integer 2..2^53,
 * num_features finite numbers in each array, var >= 0. mean and var
 * (num_features each) are written only on success.
 */
int bnd_summary_parse(const char *body, size_t len, size_t num_features, int64_t *ret_count,
		double *mean, double *var, struct bn_error *err);

/*
 * Parse {"stats": [{"count", "mean", "var"}, ...]} (1..BND_MAX_WORKERS
 * entries, counts 1..2^53) into *ret.
 */
int bnd_workers_parse(const char *body, size_t len, size_t num_features, struct bnd_workers *ret,
		struct bn_error *err);

void bnd_workers_free(struct bnd_workers *w);

/*
 * Whether a JSON body is an object whose first key is key: tells a summary
 * or stats body from {"input": T} without reading past the first key, so a
 * large tensor body costs nothing more. A body that does not start so goes
 * to the tensor reader, whose errors then name what is wrong.
 */
bool bnd_body_first_key_is(const char *body, size_t len, const char *key);

/*
 * Parse {"input": T, "grad_output": T, "mode": "train" | "eval"} ("mode"
 * optional, train by default) into two new tensors, each at most
 * max_elements, and the mode. Everything is written only on success.
 */
int bnd_backward_parse(const char *body, size_t len, size_t max_elements, struct bn_tensor *x,
		struct bn_tensor *dy, enum bn_tensor_form *form, bool *train, struct bn_error *err);

#endif
