/*
 * budget.h: the daemon's memory budget (--max-memory).
 *
 * One process-wide count of the bytes that requests have reserved against
 * a limit: request bodies as they arrive, and the answers and decoded
 * tensors that handlers are about to build, each by a sound upper estimate
 * made before the memory is allocated. A reservation that would pass the
 * limit is refused (the request gets 503 with Retry-After) instead of
 * allocating toward an out-of-memory kill. A request's reservations are
 * given back when it completes, answered or aborted (http.c).
 *
 * The count is a lock-free atomic; reserving is a compare-and-swap loop,
 * so the limit holds exactly under any concurrency.
 */
#ifndef BND_BUDGET_H
#define BND_BUDGET_H

#include <stddef.h>

#include "bn/buf.h"
#include "bn/json.h"
#include "bn/tensor.h"

/* Bytes one float32 takes in a JSON answer at most, with its ", " separator ("-1234567900000000.0"). */
#define BND_JSON_FLOAT_MAX 21

/*
 * Upper estimates of what the handlers build, for what they reserve. Each
 * is sound: the text written is never longer.
 */

/* bn_json_floats_write() of n values. */
size_t bnd_floats_text_max(size_t n);

/* bn_json_tensor_write() of t in form (the nested brackets counted from the shape). */
size_t bnd_tensor_text_max(const struct bn_tensor *t, enum bn_tensor_form form);

/* bnd_layer_write() (and so bnd_state_write()) of a layer of num_features channels. */
size_t bnd_layer_text_max(size_t num_features);

/* Set the limit in bytes (0: none) and zero every count. Call once at start. */
void bnd_budget_init(size_t limit);

/* The limit in bytes; 0 when there is none. */
size_t bnd_budget_limit(void);

/* Bytes reserved now. */
size_t bnd_budget_reserved(void);

/*
 * Reserve n bytes. Returns 0; -ENOBUFS when the bytes reserved by others
 * leave less than n (a later try may succeed); -E2BIG when n alone is more
 * than the whole limit (no try will). Nothing is reserved on error, and
 * each refusal is counted.
 */
int bnd_budget_reserve(size_t n);

/* Give back n bytes of an earlier reservation. */
void bnd_budget_release(size_t n);

/*
 * Append the budget's gauges (limit, reserved, peak reserved) and its
 * refusal counter in Prometheus text format. Returns out->err.
 */
int bnd_budget_metrics_write(struct bn_buf *out);

#endif
