/*
 * test_durability.c: what the server acknowledged outlives it.
 *
 * Restart: after SIGTERM (exit 0) and a start on the same database, every
 * layer, state and history reads back byte for byte, with the same ETags.
 * Crash: train steps run from several threads; the server is SIGKILLed
 * while some are in flight; after a restart every acknowledged step is in
 * the history with its batch statistics, and num_batches_tracked is at
 * least the last acknowledged one.
 * Answered after the commit: while the daemon's test hook holds a commit
 * (BATCHNORMD_TEST_HOLD_COMMIT) after its writes, the train step in it is
 * not answered and readers see the layer as before; released, it is.
 */
#include "harness.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CRASH_THREADS 4
#define CRASH_AFTER 40   /* acknowledged steps before the kill */
#define MAX_ACKS 4096

static struct it_daemon d;
static char hold_path[256];

struct capture {
	char body[16][8192];
	char etag[16][256];
	long status[16];
	size_t n;
};

static const char *const reads[] = {
	"/v1/layers",
	"/v1/layers/r1", "/v1/layers/r1/state", "/v1/layers/r1/history",
	"/v1/layers/r2", "/v1/layers/r2/state", "/v1/layers/r2/history?after=1&limit=2",
	"/v1/layers/r3", "/v1/layers/r3/state", "/v1/layers/r3/history",
};
enum { NREADS = sizeof(reads) / sizeof(reads[0]) };

static void capture(struct capture *c)
{
	for (size_t i = 0; i < NREADS; i++) {
		struct it_response r;

		it_call(&d, "GET", reads[i], NULL, &r);
		c->status[i] = r.status;
		snprintf(c->body[i], sizeof(c->body[i]), "%s", r.body ? r.body : "");
		snprintf(c->etag[i], sizeof(c->etag[i]), "%s", r.etag);
		CHECKF(r.status == 200, "GET %s: %ld", reads[i], r.status);
		it_response_finish(&r);
	}
}

static void ok(const char *method, const char *path, const char *body, long status)
{
	struct it_response r;

	it_call(&d, method, path, body, &r);
	CHECKF(r.status == status, "%s %s: %ld, expected %ld: %.200s", method, path, r.status, status, r.body);
	it_response_finish(&r);
}

static void test_restart(void)
{
	static struct capture before, after;

	ok("PUT", "/v1/layers/r1", "{\"num_features\": 2}", 201);
	ok("PUT", "/v1/layers/r2", "{\"num_features\": 1, \"affine\": false, \"momentum\": null}", 201);
	ok("PUT", "/v1/layers/r3", "{\"num_features\": 3, \"track_running_stats\": false, \"eps\": 0.001}", 201);
	for (int i = 0; i < 3; i++) {
		ok("POST", "/v1/layers/r1/train", "{\"input\": [[0.5, 1.0], [2.0, -3.0], [1.0, 1.0]]}", 200);
		ok("POST", "/v1/layers/r2/train", "{\"input\": [[[0.25, 1.0, 7.0]], [[2.0, 3.0, 5.0]]]}", 200);
	}
	ok("POST", "/v1/layers/r3/train", "{\"input\": [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]}", 200);
	ok("PATCH", "/v1/layers/r1", "{\"momentum\": 0.3}", 200);
	ok("POST", "/v1/layers/r1/train", "{\"input\": [[0.5, 1.0], [2.0, -3.0]]}", 200);
	ok("PUT", "/v1/layers/r1/state", "{\"weight\": [0.5, 2.0], \"num_batches_tracked\": 100}", 200);
	ok("POST", "/v1/layers/r2/reset", NULL, 200);
	ok("POST", "/v1/layers/r2/train", "{\"input\": [[1.0], [4.0]]}", 200);
	capture(&before);

	CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
	if (!CHECKF(it_daemon_start(&d, NULL) == 0, "batchnormd did not restart on its database"))
		return;
	capture(&after);
	for (size_t i = 0; i < NREADS; i++) {
		CHECKF(!strcmp(before.body[i], after.body[i]), "GET %s differs after a restart:\n  before %.400s\n  after  %.400s",
				reads[i], before.body[i], after.body[i]);
		CHECKF(!strcmp(before.etag[i], after.etag[i]), "GET %s: ETag %s before a restart, %s after",
				reads[i], before.etag[i], after.etag[i]);
	}
	/* Steps go on from where they were. */
	struct it_response r;
	it_call(&d, "POST", "/v1/layers/r1/train", "{\"input\": [[0.5, 1.0], [2.0, -3.0]]}", &r);
	CHECK(r.status == 200);
	CHECK(json_integer_value(it_get(r.json, "num_batches_tracked", NULL)) == 101);
	it_response_finish(&r);
	it_call(&d, "GET", "/v1/layers/r1/history?after=4", NULL, &r);
	json_t *steps = it_get(r.json, "steps", NULL);
	CHECKF(json_array_size(steps) == 1 && json_integer_value(it_get(json_array_get(steps, 0), "step", NULL)) == 5,
			"the first step after a restart is not step 5: %.300s", r.body);
	it_response_finish(&r);
}

static atomic_bool held_answered;
static long held_status;

static void *held_step(void *arg)
{
	struct it_response r;

	(void)arg;
	it_call(&d, "POST", "/v1/layers/held/train", "{\"input\": [[1.0], [3.0]]}", &r);
	held_status = r.status;
	it_response_finish(&r);
	atomic_store(&held_answered, true);
	return NULL;
}

/*
 * Wait (up to 20 s) until the held step has made its writes and waits for
 * COMMIT: on SQLite the committer holds it (the queue shows it), on
 * PostgreSQL the request's own transaction, idle after a write.
 */
static bool wait_held(void)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };

	if (!it_store_pg())
		return it_wait_metric(&d, "batchnormd_commit_queue 1", 20000);
	for (int i = 0; i < 2000; i++) {
		long n = 0;

		if (it_pg_sql(&d, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
				"AND state = 'idle in transaction' AND query NOT ILIKE 'select%'", &n) == 0 && n == 1)
			return true;
		nanosleep(&tick, NULL);
	}
	return false;
}

static void test_answer_after_commit(void)
{
	struct timespec second = { 1, 0 };
	struct it_snapshot before, during;
	pthread_t t;
	FILE *f;

	ok("PUT", "/v1/layers/held", "{\"num_features\": 1}", 201);
	ok("POST", "/v1/layers/held/train", "{\"input\": [[0.0], [1.0]]}", 200);
	it_snapshot_take(&d, "held", &before);
	f = fopen(hold_path, "w");
	if (!CHECKF(f != NULL, "cannot write %s", hold_path))
		return;
	fclose(f);
	CHECK(pthread_create(&t, NULL, held_step, NULL) == 0);
	CHECKF(wait_held(), "the step never reached its commit");
	/* Its commit is held: a second is ample for an answer that did not wait for it to arrive. */
	nanosleep(&second, NULL);
	CHECKF(!atomic_load(&held_answered), "a train step was answered (%ld) before its commit", held_status);
	it_snapshot_take(&d, "held", &during);
	CHECKF(it_snapshot_equal(&before, &during), "readers saw a train step before its commit: %s", during.state);
	unlink(hold_path);
	pthread_join(t, NULL);
	CHECKF(held_status == 200, "the held step, released: %ld", held_status);
	it_snapshot_finish(&during);
	it_snapshot_take(&d, "held", &during);
	CHECKF(!it_snapshot_equal(&before, &during) && strstr(during.state, "\"num_batches_tracked\": 2"),
		"the committed step does not show: %s", during.state);
	it_snapshot_finish(&during);
	it_snapshot_finish(&before);
}

struct ack {
	long long nbt;
	float mean;
};

static struct ack acks[MAX_ACKS];
static atomic_int nacks, next_input;
static atomic_bool stop;

static void *crash_worker(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		int k = atomic_fetch_add(&next_input, 1);
		char body[128];
		struct it_response r;

		snprintf(body, sizeof(body), "{\"input\": [[%d.0], [%d.0]]}", k, k + 1);
		it_call(&d, "POST", "/v1/layers/cr/train", body, &r);
		if (r.status == 200) {
			int i = atomic_fetch_add(&nacks, 1);
			if (i < MAX_ACKS) {
				acks[i].nbt = json_integer_value(it_get(r.json, "num_batches_tracked", NULL));
				acks[i].mean = it_json_f32(json_array_get(it_get(r.json, "batch_mean", NULL), 0));
				CHECKF(acks[i].mean == (float)k + 0.5f, "step answer for input %d has batch_mean %g", k,
						(double)acks[i].mean);
			}
		} else if (r.status) {
			CHECKF(false, "a train step before the kill answered %ld: %.200s", r.status, r.body);
		}
		bool down = r.status == 0;
		it_response_finish(&r);
		if (down)
			break; /* the server is gone */
	}
	return NULL;
}

static void test_crash(void)
{
	pthread_t threads[CRASH_THREADS];
	struct timespec tick = { 0, 5 * 1000 * 1000 };

	ok("PUT", "/v1/layers/cr", "{\"num_features\": 1}", 201);
	for (int i = 0; i < CRASH_THREADS; i++)
		CHECK(pthread_create(&threads[i], NULL, crash_worker, NULL) == 0);
	/* Kill once enough steps are acknowledged, the workers still sending. */
	for (int waited = 0; atomic_load(&nacks) < CRASH_AFTER && waited < 60000; waited += 5)
		nanosleep(&tick, NULL);
	CHECKF(atomic_load(&nacks) >= CRASH_AFTER, "only %d steps acknowledged in a minute", atomic_load(&nacks));
	it_daemon_kill(&d);
	atomic_store(&stop, true);
	for (int i = 0; i < CRASH_THREADS; i++)
		pthread_join(threads[i], NULL);
	int n = atomic_load(&nacks);
	if (n > MAX_ACKS)
		n = MAX_ACKS;
	printf("acknowledged before SIGKILL: %d steps, %d sent\n", n, atomic_load(&next_input));

	if (!CHECKF(it_daemon_start(&d, NULL) == 0, "batchnormd did not restart after SIGKILL"))
		return;
	struct it_response r;
	long long last = 0;
	for (int i = 0; i < n; i++)
		if (acks[i].nbt > last)
			last = acks[i].nbt;
	it_call(&d, "GET", "/v1/layers/cr/state", NULL, &r);
	long long nbt = json_integer_value(it_get(r.json, "num_batches_tracked", NULL));
	CHECKF(nbt >= last, "num_batches_tracked %lld after the crash, %lld was acknowledged", nbt, last);
	it_response_finish(&r);
	it_call(&d, "GET", "/v1/layers/cr/history?limit=1000", NULL, &r);
	json_t *steps = it_get(r.json, "steps", NULL);
	CHECKF((long long)json_array_size(steps) == nbt, "history holds %zu steps, nbt is %lld", json_array_size(steps), nbt);
	int missing = 0;
	for (int i = 0; i < n; i++) {
		json_t *e = json_array_get(steps, (size_t)(acks[i].nbt - 1));
		bool found = e && json_integer_value(json_object_get(e, "step")) == acks[i].nbt &&
			json_integer_value(json_object_get(e, "num_batches_tracked")) == acks[i].nbt &&
			it_json_f32(json_array_get(json_object_get(e, "batch_mean"), 0)) == acks[i].mean;
		missing += !found;
	}
	CHECKF(missing == 0, "%d of %d acknowledged steps are not in the history after SIGKILL", missing, n);
	it_response_finish(&r);
}

int main(int argc, char **argv)
{
	const char *args[] = { "--history-limit", "1000", NULL };

	if (it_daemon_init(&d, argc, argv) < 0)
		return 77;
	snprintf(hold_path, sizeof(hold_path), "%s/hold", d.dir);
	setenv("BATCHNORMD_TEST_HOLD_COMMIT", hold_path, 1);
	/* Default durability (--sync full): what API.md promises survives a power loss. */
	if (!CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not start"))
		goto out;
	test_restart();
	if (d.pid)
		test_answer_after_commit();
	if (d.pid) {
		CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
		CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not start again");
	}
	if (d.pid)
		test_crash();
	if (d.pid)
		CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM after recovery");
out:
	unlink(hold_path);
	it_daemon_finish(&d);
	return it_exit_status("http_durability");
}
