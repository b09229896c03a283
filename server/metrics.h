/*
 * metrics.h: counters and histograms for GET /metrics (Prometheus text).
 *
 * Everything is a relaxed atomic in fixed arrays, so recording costs a few
 * uncontended increments and no lock. Requests are counted by route pattern
 * (never by raw path, so series stay bounded), method and status.
 */
#ifndef BND_METRICS_H
#define BND_METRICS_H

#include <stddef.h>

#include "bn/buf.h"
#include "registry.h"

/* Slots beyond the route table: embedded dashboard files, and no route at all. */
#define BND_METRICS_SLOT_STATIC(n)    (n)
#define BND_METRICS_SLOT_UNMATCHED(n) ((n) + 1)

/* Seconds on a monotonic clock. */
double bnd_metrics_clock(void);

/* Remember when the process started (for process_start_time_seconds). */
void bnd_metrics_start(void);

/* Count one answered request; slot is the route's index or a BND_METRICS_SLOT_*. */
void bnd_metrics_request(size_t slot, const char *method, unsigned status, double seconds);

/* Count one store transaction of the given duration. */
void bnd_metrics_commit(double seconds);

/* Append every metric in Prometheus text format 0.0.4. Returns out->err. */
int bnd_metrics_write(struct bn_buf *out, struct bnd_registry *reg);

#endif
