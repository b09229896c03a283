/*
 * metrics.c: the counters behind GET /metrics (metrics.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "budget.h"
#include "metrics.h"

#define MAX_SLOTS 40

static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OTHER" };
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

static const unsigned statuses[] = {
	200, 201, 204, 304, 400, 401, 404, 405, 409, 412, 413, 415, 422, 500, 503, 0,
};
#define N_STATUSES (sizeof(statuses) / sizeof(statuses[0]))

static const double bounds[] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
#define N_BOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct histogram {
	atomic_uint_fast64_t buckets[N_BOUNDS + 1]; /* the last is +Inf; not cumulative here */
	atomic_uint_fast64_t sum_ns;
};

/*
 * By route slot and request method: a route slot has one method, but HEAD
 * shares GET's slot and the static and unmatched slots take any method. A
 * pair that never saw a request is not written, so the series stay those
 * the traffic made, within the fixed MAX_SLOTS x N_METHODS; and since the
 * routes sharing a pattern differ in method, no two written series share a
 * label set (a Prometheus server would keep one of them and drop the rest).
 */
static atomic_uint_fast64_t requests[MAX_SLOTS][N_METHODS][N_STATUSES];
static struct histogram durations[MAX_SLOTS][N_METHODS];
static struct histogram commits;
static double start_time;
static const char *version = "unknown";

double bnd_metrics_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bnd_metrics_start(const char *daemon_version)
{
	struct timespec ts;

	version = daemon_version;
	clock_gettime(CLOCK_REALTIME, &ts);
	start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void observe(struct histogram *h, double seconds)
{
	size_t i = 0;

	if (seconds < 0)
		seconds = 0;
	while (i < N_BOUNDS && seconds > bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, (uint_fast64_t)(seconds * 1e9), memory_order_relaxed);
}

void bnd_metrics_request(size_t slot, const char *method, unsigned status, double seconds)
{
	size_t m = N_METHODS - 1, s = N_STATUSES - 1;

	if (slot >= MAX_SLOTS)
		return;
	for (size_t i = 0; i < N_METHODS - 1; i++)
		if (strcmp(method, methods[i]) == 0)
			m = i;
	for (size_t i = 0; i < N_STATUSES - 1; i++)
		if (statuses[i] == status)
			s = i;
	atomic_fetch_add_explicit(&requests[slot][m][s], 1, memory_order_relaxed);
	observe(&durations[slot][m], seconds);
}

void bnd_metrics_commit(double seconds)
{
	observe(&commits, seconds);
}

static atomic_size_t commit_queue, changes_waiting, store_queue;
static atomic_uint_fast64_t commit_groups, commit_changes;

void bnd_metrics_store_queue(size_t held)
{
	atomic_store_explicit(&store_queue, held, memory_order_relaxed);
}

void bnd_metrics_commit_queue(size_t held)
{
	atomic_store_explicit(&commit_queue, held, memory_order_relaxed);
}

void bnd_metrics_changes_waiting(size_t n)
{
	atomic_store_explicit(&changes_waiting, n, memory_order_relaxed);
}

void bnd_metrics_commit_group(size_t changes)
{
	atomic_fetch_add_explicit(&commit_groups, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&commit_changes, changes, memory_order_relaxed);
}

static void write_commit_queue(struct bn_buf *out)
{
	bn_buf_printf(out, "# HELP batchnormd_commit_queue Changes waiting for a commit or in one.\n"
		"# TYPE batchnormd_commit_queue gauge\nbatchnormd_commit_queue %zu\n"
		"# HELP batchnormd_commit_groups_total Transactions the committer has run.\n"
		"# TYPE batchnormd_commit_groups_total counter\nbatchnormd_commit_groups_total %" PRIu64 "\n"
		"# HELP batchnormd_commit_changes_total Changes written in them (their ratio: the mean group).\n"
		"# TYPE batchnormd_commit_changes_total counter\nbatchnormd_commit_changes_total %" PRIu64 "\n"
		"# HELP batchnormd_changes_waiting Changes waiting their turn to run beside other requests "
		"(--fair-changes).\n"
		"# TYPE batchnormd_changes_waiting gauge\nbatchnormd_changes_waiting %zu\n"
		"# HELP batchnormd_store_queue Requests waiting for a store worker or on one (PostgreSQL).\n"
		"# TYPE batchnormd_store_queue gauge\nbatchnormd_store_queue %zu\n",
		atomic_load_explicit(&commit_queue, memory_order_relaxed),
		(uint64_t)atomic_load_explicit(&commit_groups, memory_order_relaxed),
		(uint64_t)atomic_load_explicit(&commit_changes, memory_order_relaxed),
		atomic_load_explicit(&changes_waiting, memory_order_relaxed),
		atomic_load_explicit(&store_queue, memory_order_relaxed));
}

static const char *slot_name(size_t slot)
{
	if (slot < bnd_routes_count)
		return bnd_routes[slot].pattern;
	return slot == BND_METRICS_SLOT_STATIC(bnd_routes_count) ? "/{file}" : "unmatched";
}

static uint64_t histogram_count(const struct histogram *h)
{
	uint64_t total = 0;

	for (size_t i = 0; i <= N_BOUNDS; i++)
		total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
	return total;
}

/* Write one histogram's buckets, sum and count; labels is "" or `route="...",method="..."`. */
static void write_histogram(struct bn_buf *out, const char *name, const char *labels,
		const struct histogram *h)
{
	const char *sep = labels[0] ? "," : "";
	uint64_t total = 0;

	for (size_t i = 0; i <= N_BOUNDS; i++) {
		total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (i < N_BOUNDS)
			bn_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
				bounds[i], total);
		else
			bn_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep, total);
	}
	bn_buf_printf(out, "%s_sum%s%s%s %.9f\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
		(double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
	bn_buf_printf(out, "%s_count%s%s%s %" PRIu64 "\n", name, labels[0] ? "{" : "", labels,
		labels[0] ? "}" : "", total);
}

static void write_requests(struct bn_buf *out, size_t slots)
{
	bn_buf_puts(out, "# HELP batchnormd_http_requests_total HTTP requests answered.\n"
		"# TYPE batchnormd_http_requests_total counter\n");
	for (size_t r = 0; r < slots; r++)
		for (size_t m = 0; m < N_METHODS; m++)
			for (size_t s = 0; s < N_STATUSES; s++) {
				uint64_t n = atomic_load_explicit(&requests[r][m][s], memory_order_relaxed);
				char status[16] = "other";

				if (n == 0)
					continue;
				if (statuses[s])
					snprintf(status, sizeof(status), "%u", statuses[s]);
				bn_buf_printf(out, "batchnormd_http_requests_total{route=\"%s\",method=\"%s\","
					"status=\"%s\"} %" PRIu64 "\n", slot_name(r), methods[m], status, n);
			}
	bn_buf_puts(out, "# HELP batchnormd_http_request_duration_seconds Time from request to answer.\n"
		"# TYPE batchnormd_http_request_duration_seconds histogram\n");
	for (size_t r = 0; r < slots; r++)
		for (size_t m = 0; m < N_METHODS; m++) {
			char labels[160];

			if (histogram_count(&durations[r][m]) == 0)
				continue;
			snprintf(labels, sizeof(labels), "route=\"%s\",method=\"%s\"", slot_name(r), methods[m]);
			write_histogram(out, "batchnormd_http_request_duration_seconds", labels, &durations[r][m]);
		}
}

int bnd_metrics_write(struct bn_buf *out, struct bnd_registry *reg)
{
	size_t slots = bnd_routes_count + 2 < MAX_SLOTS ? bnd_routes_count + 2 : MAX_SLOTS;
	struct bnd_layer **layers;
	size_t n;

	bnd_metrics_process_write(out, version);
	write_requests(out, slots);
	bn_buf_puts(out, "# HELP batchnormd_store_commit_duration_seconds Time of one store transaction.\n"
		"# TYPE batchnormd_store_commit_duration_seconds histogram\n");
	write_histogram(out, "batchnormd_store_commit_duration_seconds", "", &commits);
	write_commit_queue(out);
	if (bnd_registry_list(reg, &layers, &n) < 0)
		return -ENOMEM;
	bn_buf_printf(out, "# HELP batchnormd_layers Layers stored.\n# TYPE batchnormd_layers gauge\n"
		"batchnormd_layers %zu\n", n);
	bn_buf_puts(out, "# HELP batchnormd_train_steps_total Train steps since the process started.\n"
		"# TYPE batchnormd_train_steps_total counter\n");
	for (size_t i = 0; i < n; i++) {
		bn_buf_printf(out, "batchnormd_train_steps_total{layer=\"%s\"} %" PRIu64 "\n",
			layers[i]->name, (uint64_t)atomic_load(&layers[i]->train_steps));
		bnd_layer_unref(layers[i]);
	}
	free(layers);
	bn_buf_printf(out, "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
		"# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n", start_time);
	bnd_budget_metrics_write(out);
	return out->err;
}
