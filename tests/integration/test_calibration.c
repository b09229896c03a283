/*
 * test_calibration.c: precise-BN calibration over HTTP.
 *
 * The worked example (51 batches of [[[[0, 1]]]]): committed as population
 * it gives running_var 25.5/101 and eval +-0.9951; as batch_average 0.5 and
 * +-0.7071, as torch.optim.swa_utils.update_bn does. Worker summaries give
 * what the whole batch gives. If-Match on commit; 404, 409, 422 and 413
 * cases change nothing. Eight threads posting summaries to one calibration
 * lose nothing. A SIGKILL during calibration loses no acknowledged post.
 */
#include "harness.h"

#include <math.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define THREADS 8
#define POSTS_PER_THREAD 25
#define CRASH_THREADS 4
#define CRASH_AFTER 40
#define MAX_ACKS 4096

static struct it_daemon d;

static long call(const char *method, const char *path, const char *body, struct it_response *r)
{
	it_call(&d, method, path, body, r);
	return r->status;
}

static void ok(const char *method, const char *path, const char *body, long status)
{
	struct it_response r;

	call(method, path, body, &r);
	CHECKF(r.status == status, "%s %s: %ld, expected %ld: %.300s", method, path, r.status, status, r.body);
	it_response_finish(&r);
}

static double num(const json_t *j, const char *key, size_t i)
{
	return json_number_value(json_array_get(json_object_get(j, key), i));
}

static void calibrate_worked_example(const char *layer)
{
	char path[128];

	snprintf(path, sizeof(path), "/v1/layers/%s/calibration", layer);
	for (int i = 0; i < 51; i++)
		ok("POST", path, "{\"input\": [[[[0.0, 1.0]]]]}", 200);
}

/* Commit with the layer's ETag, after a stale one is refused. */
static void commit(const char *layer, const char *variance, struct it_response *out)
{
	char path[128], body[64], match[300];
	struct it_response r;

	snprintf(path, sizeof(path), "/v1/layers/%s", layer);
	call("GET", path, NULL, &r);
	snprintf(match, sizeof(match), "If-Match: %s", r.etag);
	it_response_finish(&r);
	snprintf(path, sizeof(path), "/v1/layers/%s/calibration/commit", layer);
	snprintf(body, sizeof(body), "{\"variance\": \"%s\"}", variance);
	const char *stale[] = { "If-Match: \"1-999\"", NULL }, *fresh[] = { match, NULL };
	it_request(&d, "POST", path, stale, body, strlen(body), &r);
	it_check_problem(&r, 412, "precondition_failed", "commit with a stale If-Match");
	it_response_finish(&r);
	it_request(&d, "POST", path, fresh, body, strlen(body), out);
	CHECKF(out->status == 200, "commit %s: %ld %.300s", variance, out->status, out->body);
}

static void test_worked_example(void)
{
	struct it_response r;
	float y[2];

	ok("PUT", "/v1/layers/we", "{\"num_features\": 1, \"affine\": false}", 201);
	for (int i = 0; i < 51; i++)
		ok("POST", "/v1/layers/we/train", "{\"input\": [[[[0.0, 1.0]]]]}", 200);
	calibrate_worked_example("we");
	call("GET", "/v1/layers/we/calibration", NULL, &r);
	CHECKF(r.status == 200 && json_integer_value(json_object_get(r.json, "count")) == 102 &&
			json_integer_value(json_object_get(r.json, "batches")) == 51, "%.300s", r.body);
	CHECKF(num(r.json, "mean", 0) == 0.5 && fabs(num(r.json, "var", 0) - 25.5 / 101) < 1e-15,
			"population: %.300s", r.body);
	CHECKF(num(json_object_get(r.json, "batch_average"), "var", 0) == 0.5, "batch_average: %.300s", r.body);
	CHECKF(it_json_f32(json_array_get(json_object_get(r.json, "running_var"), 0)) == it_f32("0.5023191"),
			"running_var beside the calibration: %.300s", r.body);
	it_response_finish(&r);

	commit("we", "population", &r);
	CHECK(it_json_f32(json_array_get(json_object_get(r.json, "running_var"), 0)) == (float)(25.5 / 101));
	CHECK(json_integer_value(json_object_get(r.json, "num_batches_tracked")) == 51);
	it_response_finish(&r);
	call("POST", "/v1/layers/we/eval", "{\"input\": [[[[0.0, 1.0]]]]}", &r);
	CHECKF(it_json_floats(json_object_get(r.json, "output"), y, 2) == 2 && fabsf(y[0] + 0.9951f) < 1e-4f &&
			fabsf(y[1] - 0.9951f) < 1e-4f, "eval after population: %.200s", r.body);
	printf("population: eval %.200s\n", r.body);
	it_response_finish(&r);
	call("GET", "/v1/layers/we/calibration", NULL, &r);
	it_check_problem(&r, 404, "no_calibration", "GET after commit");
	it_response_finish(&r);

	calibrate_worked_example("we");
	commit("we", "batch_average", &r);
	CHECK(it_json_f32(json_array_get(json_object_get(r.json, "running_var"), 0)) == 0.5f);
	CHECK(it_json_f32(json_array_get(json_object_get(r.json, "running_mean"), 0)) == 0.5f);
	it_response_finish(&r);
	call("POST", "/v1/layers/we/eval", "{\"input\": [[[[0.0, 1.0]]]]}", &r);
	CHECKF(it_json_floats(json_object_get(r.json, "output"), y, 2) == 2 && fabsf(y[1] - 0.70710f) < 1e-4f,
			"eval after batch_average: %.200s", r.body);
	printf("batch_average: eval %.200s\n", r.body);
	it_response_finish(&r);
}

/* A batch posted whole, as .npy, or as two worker summaries: the same statistics. */
static void test_summaries(void)
{
	const float data[8] = { 1, 2, 3, 4, 10, 20, 30, 40 }; /* (4, 2): channel 0 {1,3,10,30}, 1 {2,4,20,40} */
	const size_t shape[2] = { 4, 2 };
	const char *npy_type[] = { "Content-Type: application/x-npy", NULL };
	struct it_response a, b;
	size_t len;
	void *npy = it_npy_build("<f4", false, shape, 2, data, 8, &len);

	ok("PUT", "/v1/layers/sa", "{\"num_features\": 2}", 201);
	ok("PUT", "/v1/layers/sb", "{\"num_features\": 2}", 201);
	it_request(&d, "POST", "/v1/layers/sa/calibration", npy_type, npy, len, &a);
	CHECKF(a.status == 200, ".npy batch: %ld %.200s", a.status, a.body);
	it_response_finish(&a);
	free(npy);
	ok("POST", "/v1/layers/sb/calibration", "{\"count\": 2, \"mean\": [2, 3], \"var\": [1, 1]}", 200);
	ok("POST", "/v1/layers/sb/calibration", "{\"count\": 2, \"mean\": [20, 30], \"var\": [100, 100]}", 200);
	call("GET", "/v1/layers/sa/calibration", NULL, &a);
	call("GET", "/v1/layers/sb/calibration", NULL, &b);
	for (size_t c = 0; c < 2; c++) {
		CHECKF(fabs(num(a.json, "mean", c) - num(b.json, "mean", c)) <= 1e-12 * fabs(num(a.json, "mean", c)) &&
				fabs(num(a.json, "var", c) - num(b.json, "var", c)) <= 1e-12 * num(a.json, "var", c),
				"whole %.300s\nsplit %.300s", a.body, b.body);
	}
	CHECK(json_integer_value(json_object_get(a.json, "count")) == 4);
	CHECK(json_integer_value(json_object_get(b.json, "count")) == 4);
	/* Channel 0: {1, 3, 10, 30}, mean 11, unbiased variance 526 / 3. */
	CHECKF(num(a.json, "mean", 0) == 11 && fabs(num(a.json, "var", 0) - 526.0 / 3) < 1e-12, "%.300s", a.body);
	it_response_finish(&a);
	it_response_finish(&b);
}

/* Calibration rows whose layer is gone, read from the daemon's database beside it. */
static long orphan_calibrations(void)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long n = -1;

	if (it_store_pg()) {
		it_pg_sql(&d, "SELECT count(*) FROM calibration WHERE layer_id NOT IN (SELECT id FROM layers)", &n);
		return n;
	}
	if (sqlite3_open_v2(d.db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
			sqlite3_prepare_v2(db, "SELECT count(*) FROM calibration WHERE layer_id NOT IN "
				"(SELECT id FROM layers)", -1, &st, NULL) == SQLITE_OK &&
			sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* A refused request changes neither the calibration nor the layer. */
static void refused(const char *method, const char *path, const char *body, long status, const char *code)
{
	struct it_response before, after, r;
	struct it_snapshot s0, s1;

	call("GET", "/v1/layers/er/calibration", NULL, &before);
	it_snapshot_take(&d, "er", &s0);
	call(method, path, body, &r);
	it_check_problem(&r, status, code, body ? body : path);
	it_response_finish(&r);
	call("GET", "/v1/layers/er/calibration", NULL, &after);
	it_snapshot_take(&d, "er", &s1);
	CHECKF(before.body && after.body && !strcmp(before.body, after.body), "%s changed the calibration", body);
	CHECKF(it_snapshot_equal(&s0, &s1), "%s changed the layer", body);
	it_snapshot_finish(&s0);
	it_snapshot_finish(&s1);
	it_response_finish(&before);
	it_response_finish(&after);
}

static void test_errors(void)
{
	const char *cal = "/v1/layers/er/calibration";
	struct it_response r;

	ok("PUT", "/v1/layers/nt", "{\"num_features\": 2, \"track_running_stats\": false}", 201);
	call("POST", "/v1/layers/nt/calibration", "{\"input\": [[1, 2], [3, 4]]}", &r);
	it_check_problem(&r, 409, "not_tracking", "calibration of a layer without running stats");
	it_response_finish(&r);
	call("GET", "/v1/layers/nt/calibration", NULL, &r);
	it_check_problem(&r, 409, "not_tracking", "GET calibration without running stats");
	it_response_finish(&r);
	call("GET", "/v1/layers/none/calibration", NULL, &r);
	it_check_problem(&r, 404, "not_found", "calibration of an unknown layer");
	it_response_finish(&r);

	ok("PUT", "/v1/layers/er", "{\"num_features\": 2}", 201);
	call("GET", cal, NULL, &r);
	it_check_problem(&r, 404, "no_calibration", "GET with none open");
	it_response_finish(&r);
	call("DELETE", cal, NULL, &r);
	it_check_problem(&r, 404, "no_calibration", "DELETE with none open");
	it_response_finish(&r);
	call("POST", "/v1/layers/er/calibration/commit", "{\"variance\": \"population\"}", &r);
	it_check_problem(&r, 404, "no_calibration", "commit with none open");
	it_response_finish(&r);

	ok("POST", cal, "{\"count\": 3, \"mean\": [1, 2], \"var\": [0.5, 0]}", 200);
	refused("POST", cal, "{\"count\": 1, \"mean\": [1, 2], \"var\": [0, 0]}", 422, "invalid_stats");
	refused("POST", cal, "{\"count\": 2.5, \"mean\": [1, 2], \"var\": [0, 0]}", 422, "invalid_stats");
	refused("POST", cal, "{\"count\": 9007199254740993, \"mean\": [1, 2], \"var\": [0, 0]}", 422, "invalid_stats");
	refused("POST", cal, "{\"count\": 4, \"mean\": [1, 2], \"var\": [0, -1]}", 422, "invalid_stats");
	refused("POST", cal, "{\"count\": 4, \"mean\": [1, 2, 3], \"var\": [0, 1]}", 422, "wrong_channels");
	refused("POST", cal, "{\"count\": 4, \"mean\": [1, \"2\"], \"var\": [0, 1]}", 422, "invalid_stats");
	refused("POST", cal, "{\"count\": 4, \"mean\": [1, 1e400], \"var\": [0, 1]}", 422, "out_of_range");
	refused("POST", cal, "{\"count\": 4, \"mean\": [1, 2], \"var\": [0, 1], \"extra\": 1}", 422, "unknown_key");
	refused("POST", cal, "{\"count\": 4, \"mean\": [1, 2]}", 422, "wrong_type");
	refused("POST", cal, "{\"count\": 4, \"mean\": [1, 2], \"var\": [0, 1]", 400, "invalid_json");
	refused("POST", cal, "{\"input\": [[1, 2]]}", 422, "too_few_values");
	refused("POST", cal, "{\"input\": [[1, 2, 3], [4, 5, 6]]}", 422, "wrong_channels");
	refused("POST", "/v1/layers/er/calibration/commit", "{\"variance\": \"median\"}", 422, "wrong_type");
	refused("POST", "/v1/layers/er/calibration/commit", "{}", 422, "missing_input");
	refused("POST", "/v1/layers/er/calibration/commit", "{\"variance\": \"population\", \"x\": 1}", 422,
			"unknown_key");

	/* A summary body is read whole: past its cap it is 413, whatever it holds. */
	size_t big = (4u << 20) + 64;
	char *body = malloc(big + 1);
	if (CHECK(body != NULL)) {
		int head = snprintf(body, big, "{\"count\": 4, \"mean\": [1, 2], \"var\": [0, 1]");
		memset(body + head, ' ', big - (size_t)head - 1);
		memcpy(body + big - 1, "}", 2);
		refused("POST", cal, body, 413, "too_large");
		free(body);
	}

	/* A commit body is read whole too, and is tiny. */
	char commit_body[8192];
	memset(commit_body, ' ', sizeof(commit_body) - 1);
	commit_body[sizeof(commit_body) - 1] = 0;
	memcpy(commit_body, "{\"variance\": \"population\"}", 26);
	refused("POST", "/v1/layers/er/calibration/commit", commit_body, 413, "too_large");

	/* DELETE of the layer takes its calibration: a new layer of that name has none. */
	ok("DELETE", "/v1/layers/er", NULL, 204);
	CHECKF(orphan_calibrations() == 0, "%ld calibration rows outlive their layer", orphan_calibrations());
	ok("PUT", "/v1/layers/er", "{\"num_features\": 2}", 201);
	call("GET", cal, NULL, &r);
	it_check_problem(&r, 404, "no_calibration", "GET after the layer was deleted and made again");
	it_response_finish(&r);
	ok("POST", cal, "{\"count\": 3, \"mean\": [1, 2], \"var\": [0.5, 0]}", 200);
	ok("DELETE", cal, NULL, 204);
	call("GET", cal, NULL, &r);
	it_check_problem(&r, 404, "no_calibration", "GET after DELETE");
	it_response_finish(&r);
}

static void *concurrent_worker(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int j = 0; j < POSTS_PER_THREAD; j++) {
		char body[128];
		struct it_response r;

		snprintf(body, sizeof(body), "{\"count\": 4, \"mean\": [%d, %d], \"var\": [1, 0.25]}", t, -j);
		call("POST", "/v1/layers/cc/calibration", body, &r);
		CHECKF(r.status == 200, "%ld %.200s", r.status, r.body);
		it_response_finish(&r);
	}
	return NULL;
}

static void test_concurrent(void)
{
	pthread_t th[THREADS];
	struct it_response r;
	double want0 = 0, want1 = 0, n = THREADS * POSTS_PER_THREAD;

	ok("PUT", "/v1/layers/cc", "{\"num_features\": 2}", 201);
	for (int t = 0; t < THREADS; t++)
		CHECK(pthread_create(&th[t], NULL, concurrent_worker, (void *)(intptr_t)t) == 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < THREADS; t++)
		for (int j = 0; j < POSTS_PER_THREAD; j++)
			want0 += t, want1 -= j;
	want0 /= n, want1 /= n;
	call("GET", "/v1/layers/cc/calibration", NULL, &r);
	long long count = json_integer_value(json_object_get(r.json, "count"));
	long long batches = json_integer_value(json_object_get(r.json, "batches"));
	printf("%d threads x %d summaries: count %lld (want %.0f), batches %lld, mean [%.17g, %.17g] "
			"(want [%.17g, %.17g])\n", THREADS, POSTS_PER_THREAD, count, 4 * n, batches,
			num(r.json, "mean", 0), num(r.json, "mean", 1), want0, want1);
	CHECKF(count == (long long)(4 * n) && batches == (long long)n, "lost posts: %.300s", r.body);
	CHECK(fabs(num(r.json, "mean", 0) - want0) < 1e-12 && fabs(num(r.json, "mean", 1) - want1) < 1e-12);
	it_response_finish(&r);
}

static long long acked[MAX_ACKS];
static atomic_int nacks, next_k;
static atomic_bool stop;

static void *crash_worker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		int k = atomic_fetch_add(&next_k, 1);
		char body[128];
		struct it_response r;

		snprintf(body, sizeof(body), "{\"count\": 2, \"mean\": [%d], \"var\": [0]}", k);
		call("POST", "/v1/layers/kc/calibration", body, &r);
		if (r.status == 200) {
			int i = atomic_fetch_add(&nacks, 1);
			if (i < MAX_ACKS)
				acked[i] = k;
		}
		bool down = r.status == 0;
		it_response_finish(&r);
		if (down)
			break;
	}
	return NULL;
}

/* Every acknowledged post is in the calibration after SIGKILL and a restart. */
static void test_crash(void)
{
	pthread_t th[CRASH_THREADS];
	struct timespec tick = { 0, 5 * 1000 * 1000 };
	struct it_response r;
	double acked_sum = 0, sent_sum = 0;

	ok("PUT", "/v1/layers/kc", "{\"num_features\": 1}", 201);
	for (int i = 0; i < CRASH_THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, crash_worker, NULL) == 0);
	for (int waited = 0; atomic_load(&nacks) < CRASH_AFTER && waited < 60000; waited += 5)
		nanosleep(&tick, NULL);
	it_daemon_kill(&d);
	atomic_store(&stop, true);
	for (int i = 0; i < CRASH_THREADS; i++)
		pthread_join(th[i], NULL);
	int n = atomic_load(&nacks) < MAX_ACKS ? atomic_load(&nacks) : MAX_ACKS, sent = atomic_load(&next_k);
	for (int i = 0; i < n; i++)
		acked_sum += (double)acked[i];
	for (int k = 0; k < sent; k++)
		sent_sum += k;
	if (!CHECKF(it_daemon_start(&d, NULL) == 0, "batchnormd did not restart after SIGKILL"))
		return;
	call("GET", "/v1/layers/kc/calibration", NULL, &r);
	long long batches = json_integer_value(json_object_get(r.json, "batches"));
	double total = num(json_object_get(r.json, "batch_average"), "mean", 0) * (double)batches;
	printf("SIGKILL after %d acknowledged posts (%d sent): %lld batches after the restart\n", n, sent, batches);
	/* Each post k adds k to the sum of batch means: what is there holds every acknowledged one. */
	CHECKF(batches >= n && batches <= sent, "%lld batches after the restart, %d acknowledged", batches, n);
	CHECKF(total >= acked_sum - 1e-6 && total <= sent_sum + 1e-6, "sum of batch means %.17g, acknowledged %.17g",
			total, acked_sum);
	CHECK(json_integer_value(json_object_get(r.json, "count")) == 2 * batches);
	it_response_finish(&r);
}

/* Reading a summary reserves from the memory budget first: past it, 413 and nothing changes. */
static void test_budget(void)
{
	static struct it_daemon small;
	const char *args[] = { "--max-memory", "1048576", NULL };
	char *body = malloc(64 * 1024);
	struct it_response r;

	if (!CHECK(body != NULL) || it_daemon_init(&small, 2, (char *[]){ "", d.exe, NULL }) < 0 ||
			!CHECKF(it_daemon_start(&small, args) == 0, "batchnormd --max-memory 1048576 did not start")) {
		free(body);
		return;
	}
	int head = snprintf(body, 64 * 1024, "{\"count\": 4, \"mean\": [1], \"var\": [1]");
	memset(body + head, ' ', 64 * 1024 - (size_t)head - 2);
	memcpy(body + 64 * 1024 - 2, "}", 2);
	it_call(&small, "PUT", "/v1/layers/b", "{\"num_features\": 1}", &r);
	it_response_finish(&r);
	it_call(&small, "POST", "/v1/layers/b/calibration", body, &r);
	it_check_problem(&r, 413, "too_large", "a summary whose reading passes the memory budget");
	CHECKF(r.body && strstr(r.body, "--max-memory"), "the detail names the budget: %.300s", r.body);
	it_response_finish(&r);
	it_call(&small, "GET", "/v1/layers/b/calibration", NULL, &r);
	it_check_problem(&r, 404, "no_calibration", "nothing was added");
	it_response_finish(&r);
	CHECKF(it_daemon_stop(&small) == 0, "batchnormd --max-memory did not exit 0");
	it_daemon_finish(&small);
	free(body);
}

int main(int argc, char **argv)
{
	const char *args[] = { "--sync", "normal", NULL };
	void (*const tests[])(void) = { test_worked_example, test_summaries, test_errors, test_concurrent,
		test_budget, test_crash, NULL };

	return it_run(&d, "http_calibration", argc, argv, args, tests);
}
