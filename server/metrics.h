/*
 * metrics.h: counters and histograms for GET /metrics (Prometheus text).
 *
 * Everything is a relaxed atomic in fixed arrays, so recording costs a few
 * uncontended increments and no lock. Requests are counted by route pattern
 * (never by raw path, so series stay bounded), method and status; their
 * durations by route pattern and method. metrics_process.c adds the build
 * and process families.
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

/*
 * Remember when the process started (for process_start_time_seconds) and the
 * daemon's version (for batchnormd_build_info; a string that outlives the
 * process's metrics, such as a literal).
 */
void bnd_metrics_start(const char *daemon_version);

/* Count one answered request; slot is the route's index or a BND_METRICS_SLOT_*. */
void bnd_metrics_request(size_t slot, const char *method, unsigned status, double seconds);

/* Count one store transaction of the given duration. */
void bnd_metrics_commit(double seconds);

/* The committer's jobs waiting for a commit or in one, now (a gauge). */
void bnd_metrics_commit_queue(size_t held);

/* Requests waiting for a store worker or on one, now (a gauge; PostgreSQL only). */
void bnd_metrics_store_queue(size_t held);

/* Changes waiting their turn beside other requests now (http_admit.c). */
void bnd_metrics_changes_waiting(size_t n);

/* Count one transaction of the committer and the changes it wrote. */
void bnd_metrics_commit_group(size_t changes);

/* Append every metric in Prometheus text format 0.0.4. Returns out->err. */
int bnd_metrics_write(struct bn_buf *out, struct bnd_registry *reg);

/*
 * Append batchnormd_build_info (this version and those of the SQLite and
 * libmicrohttpd libraries loaded at run time) and the process_* families of
 * Prometheus's client conventions: CPU seconds, resident and virtual memory,
 * open and maximum file descriptors (metrics_process.c). A figure that cannot
 * be read (no /proc) is left out rather than written as 0. Errors show in
 * out->err.
 */
void bnd_metrics_process_write(struct bn_buf *out, const char *daemon_version);

#endif
