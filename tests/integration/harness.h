/*
 * harness.h: what every integration test shares.
 *
 * A test starts the real batchnormd binary (its path is argv[1], or the
 * BATCHNORMD environment variable) on 127.0.0.1 port 0 with a database in a
 * fresh temporary directory, waits for its "listening on" line and for
 * GET /readyz to answer 200, drives it over HTTP with libcurl, checks the
 * answers with jansson, and stops it with SIGTERM (expecting exit status 0)
 * or SIGKILL. Checks count and print failures instead of aborting, so one
 * run shows every disagreement; a test's exit status is it_exit_status().
 */
#ifndef IT_HARNESS_H
#define IT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pthread.h>
#include <jansson.h>

/* How long the daemon may take to print its port, get ready, or exit. */
#define IT_START_TIMEOUT_MS 30000
#define IT_STOP_TIMEOUT_MS  30000

/* Record a failure (with the place and the failed condition) unless cond holds. */
#define CHECK(cond) \
	it_check((cond), __FILE__, __LINE__, "%s", #cond)
/* The same with a printf-formatted explanation. */
#define CHECKF(cond, ...) \
	it_check((cond), __FILE__, __LINE__, __VA_ARGS__)

/* Record a failure unless ok; returns ok. Thread-safe. */
bool it_check(bool ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* How many checks have failed so far. */
unsigned it_failures(void);

/* Print a summary line and give the process exit status: 0, or 1 after any failure. */
int it_exit_status(const char *test_name);

/* One batchnormd process and the temporary directory holding its database. */
struct it_daemon {
	char exe[4096];
	char dir[64];        /* mkdtemp'd; removed by it_daemon_finish() */
	char db[128];        /* dir/layers.db */
	char store[512];     /* the PostgreSQL URL on that backend (harness_pg.c), else "" */
	bool store_owner;    /* this daemon's database is dropped by it_daemon_finish() */
	pid_t pid;           /* 0 when not running */
	int port;
	char base[64];       /* http://127.0.0.1:PORT */
	int out_fd;          /* the read end of the daemon's stdout */
	pthread_t drain;     /* copies the rest of its stdout to ours */
	bool draining;
};

/*
 * Find the binary (argv[1] or $BATCHNORMD) and make the temporary directory.
 * Also initializes libcurl once for the process. 0 or negative errno.
 */
int it_daemon_init(struct it_daemon *d, int argc, char **argv);

/*
 * Start the daemon on the directory's database with these extra arguments
 * (NULL-terminated, may be NULL), wait for its port and for /readyz 200.
 * 0, or a negative errno with the process killed and reaped.
 */
int it_daemon_start(struct it_daemon *d, const char *const extra_args[]);

/*
 * SIGTERM, then wait for the exit. Returns the exit status (0..255), or -1
 * when it died of a signal or did not exit in time (then it is SIGKILLed).
 */
int it_daemon_stop(struct it_daemon *d);

/* Wait for an exit already asked for (no signal sent); returns as it_daemon_stop(). */
int it_daemon_wait(struct it_daemon *d);

/* Whether the daemon still runs; reaps it (and says how it ended) when not. */
bool it_daemon_alive(struct it_daemon *d);

/* SIGKILL and reap, as a crash. */
void it_daemon_kill(struct it_daemon *d);

/* Kill the daemon if it still runs and remove the temporary directory. */
void it_daemon_finish(struct it_daemon *d);

/*
 * The whole of a test that needs one daemon for its life: init d, start it
 * with extra_args, run each of tests[] (NULL-terminated) while the daemon is
 * alive, stop it expecting exit 0, clean up. Returns the exit status for
 * main(): 0, 1 when a check failed, 77 when no daemon was given.
 */
int it_run(struct it_daemon *d, const char *test_name, int argc, char **argv,
		const char *const extra_args[], void (*const tests[])(void));

/*
 * Poll GET /metrics (every 10 ms, up to timeout_ms) until a line of it is
 * exactly line ("batchnormd_commit_queue 2"). Whether it was seen.
 */
bool it_wait_metric(const struct it_daemon *d, const char *line, int timeout_ms);

/*
 * it_wait_metric for "batchnormd_commit_queue n" (up to 20 s), recording a
 * failure when it never shows. Whether it was seen.
 */
bool it_wait_commit_queue(const struct it_daemon *d, int n);

/*
 * Train input k of the concurrency tests: IT_STEP_N rows of IT_STEP_C
 * channels, channel 0 with mean k + 0.75 (so a history entry's batch_mean
 * names its input), channel 1 varying too. it_step_json writes it as a
 * train body ({"input": [...]}, at most 256 bytes).
 */
#define IT_STEP_N 4
#define IT_STEP_C 2
void it_step_values(int k, float x[IT_STEP_N * IT_STEP_C]);
void it_step_json(int k, char *buf, size_t size);

/* Write content to the file at path (a test hook's file), recording a failure when it cannot. */
void it_touch(const char *path, const char *content);

/* Sleep ms milliseconds, across signals. */
void it_sleep_ms(long ms);

/*
 * The PostgreSQL backend (harness_pg.c). A test registered in the
 * integration-pg suite runs with BATCHNORMD_TEST_BACKEND=postgresql and
 * BATCHNORMD_TEST_STORE (postgresql://user@host:port, from
 * tests/pg/cluster run); it_daemon_init() then creates a database of its
 * own for the daemon, which starts with --store instead of --db.
 */
bool it_store_pg(void);

/* Create d's database and set d->store; 0, or -ENOENT (said) when there is no cluster. */
int it_pg_create(struct it_daemon *d);

/* Drop d's database if d created it. */
void it_pg_drop(struct it_daemon *d);

/* Make d a replica of from: the same database (PostgreSQL only). */
void it_daemon_share(struct it_daemon *d, const struct it_daemon *from);

/* Stop or start the test cluster's server (action "stop" or "start"); 0 or -1. */
int it_pg_server(const char *action);

/* Run sql on d's database; *ret_value (may be NULL) gets the first column of the first row. 0 or -EIO. */
int it_pg_sql(const struct it_daemon *d, const char *sql, long *ret_value);

/* Skip a SQLite-only check on PostgreSQL, saying why; true when skipped. */
bool it_skip_on_pg(const char *what);

/* Write a file named name into the daemon's directory; its path goes to path. 0 or -errno. */
int it_write_file(struct it_daemon *d, const char *name, const char *content,
		char *path, size_t path_size);

/* An HTTP answer. Header values are empty when the header was absent. */
struct it_response {
	long status;          /* 0 when the request failed at the transport */
	int curl_code;        /* CURLcode */
	char *body;           /* NUL-terminated */
	size_t len;
	json_t *json;         /* the body parsed, when it is JSON; else NULL */
	char etag[256];
	char location[512];
	char allow[256];
	char content_type[256];
	char www_authenticate[256];
	char retry_after[32];
};

/* Free the body and the JSON; r is zeroed. Accepts a zeroed response. */
void it_response_finish(struct it_response *r);

/*
 * Send method path with headers ("Name: value", NULL-terminated, may be
 * NULL) and body[0..len) (body NULL: none). A body gets
 * "Content-Type: application/json" unless headers name a Content-Type
 * ("Content-Type:" with nothing after it sends none). r is overwritten
 * (finish it first when reusing). Returns 0, or -EIO when the transport
 * failed (r->status is then 0 and r->curl_code says why).
 */
int it_request(const struct it_daemon *d, const char *method, const char *path,
		const char *const headers[], const void *body, size_t len,
		struct it_response *r);

/*
 * it_request with a body of total bytes produced by gen as curl asks for
 * them (gen fills up to size bytes of buf, returns how many), sent with
 * Content-Length: for bodies too large to hold, or sent in pieces.
 */
int it_request_gen(const struct it_daemon *d, const char *method, const char *path,
		const char *const headers[], size_t total,
		size_t (*gen)(char *buf, size_t size, void *ctx), void *ctx,
		struct it_response *r);

/* it_request with a NUL-terminated JSON body (or NULL) and no extra headers. */
int it_call(const struct it_daemon *d, const char *method, const char *path,
		const char *json_body, struct it_response *r);

/*
 * Check that r is an RFC 9457 problem with this status and code (code NULL:
 * any non-empty code): application/problem+json, and type, title, detail
 * strings, status equal to the HTTP status. what names the case in failures.
 */
void it_check_problem(const struct it_response *r, long status, const char *code,
		const char *what);

/* Check that no value in j is null, except under the keys "momentum" and "next_after". */
void it_check_no_null(const json_t *j, const char *what);

/* Check that s is RFC 3339 UTC with milliseconds and a Z: 2026-11-23T10:00:05.120Z. */
void it_check_time(const char *s, const char *what);

/* Check that the comma-separated header value list holds token (case-sensitive). */
bool it_header_has(const char *list, const char *token);

/* The float32 a decimal text stands for. */
float it_f32(const char *decimal);

/* The float32 a JSON number stands for: parsed as double, then rounded. NaN when not a number. */
float it_json_f32(const json_t *v);

/* Bitwise float equality: -0 differs from 0, NaN equals the same NaN. */
bool it_same_f32(float a, float b);

/*
 * Flatten the numbers of a (nested) JSON array into out[0..max). Returns
 * how many, or -1 when something is not a number or there are more than max.
 */
long it_json_floats(const json_t *arr, float *out, size_t max);

/* j[key1][key2]... (NULL-terminated keys); NULL when missing. */
json_t *it_get(const json_t *j, ...) __attribute__((sentinel));

/* The layer's GET /state body and GET /v1/layers/{name} ETag, for "unchanged" checks (caller frees). */
struct it_snapshot {
	char *state;   /* GET /state body, NULL when it failed */
	char etag[256];
	long status;
};
void it_snapshot_take(const struct it_daemon *d, const char *name, struct it_snapshot *s);
bool it_snapshot_equal(const struct it_snapshot *a, const struct it_snapshot *b);
void it_snapshot_finish(struct it_snapshot *s);

/* A .npy (format 1.0) holding a little-endian float32 C-order array; caller frees. */
void *it_npy_build(const char *descr, bool fortran, const size_t *shape, unsigned rank,
		const float *data, size_t count, size_t *ret_len);

/*
 * Parse a .npy answer: must be '<f4', C order. Writes up to max values and
 * the shape; returns the element count, or -1 when it does not parse.
 */
long it_npy_parse(const void *buf, size_t len, size_t *shape, unsigned *rank,
		float *out, size_t max);

#endif
