/*
 * test_fair.c: changes make way for other requests (--fair-changes), and
 * nothing is lost or reordered for it.
 *
 * With --threads 1 --fair-changes 1 and commits held (the committer waits
 * while the file BATCHNORMD_TEST_HOLD_COMMIT names exists), while a thread
 * keeps evals going:
 *
 * - a change waits its turn: one train step holds the one place, and a
 *   second one, on another layer, waits (batchnormd_changes_waiting 1, the
 *   commit queue still 1, its layer unchanged) while evals are answered,
 *   and past --request-timeout (2 s) without being cut; released, both
 *   commit;
 * - 8 threads x 10 steps on one layer beside the evals: all 200, and the
 *   layer has taken all 80, history steps 1..80;
 * - a change waiting its turn at SIGTERM is still run and answered 200,
 *   and the daemon exits 0; also when the commit before it is held past
 *   the 30 s grace (it is then answered 200 or 503, never left suspended
 *   when libmicrohttpd stops).
 *
 * With no other request for a while, changes run without the limit: three
 * steps are queued for one commit at once (commit queue 3, none waiting).
 */
#include "harness.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define THREADS 8
#define STEPS_EACH 10

static struct it_daemon d;
static char hold_path[256];

struct step {
	pthread_t thread;
	char path[64];
	long status;
};

static void *send_step(void *arg)
{
	struct step *s = arg;
	struct it_response r;

	it_call(&d, "POST", s->path, "{\"input\": [[1.0, 2.0], [3.5, -1.0]]}", &r);
	s->status = r.status;
	it_response_finish(&r);
	return NULL;
}

static void start_step(struct step *s, const char *layer)
{
	snprintf(s->path, sizeof(s->path), "/v1/layers/%s/train", layer);
	s->status = 0;
	CHECK(pthread_create(&s->thread, NULL, send_step, s) == 0);
}

static void finish_step(struct step *s, const char *what)
{
	pthread_join(s->thread, NULL);
	CHECKF(s->status == 200, "%s: %ld, expected 200", what, s->status);
}

/* Evals on layer "reads" every few milliseconds until told to stop. */
static atomic_bool reading;
static atomic_int reads_ok, reads_bad;
static pthread_t reader;

static void *read_loop(void *arg)
{
	(void)arg;
	while (atomic_load(&reading)) {
		struct it_response r;

		it_call(&d, "POST", "/v1/layers/reads/eval", "{\"input\": [[1.0, 2.0]]}", &r);
		atomic_fetch_add(r.status == 200 ? &reads_ok : &reads_bad, 1);
		it_response_finish(&r);
		it_sleep_ms(5);
	}
	return NULL;
}

static void start_reads(void)
{
	atomic_store(&reading, true);
	CHECK(pthread_create(&reader, NULL, read_loop, NULL) == 0);
	/* The limit holds from the first eval on. */
	for (int i = 0; i < 2000 && atomic_load(&reads_ok) == 0; i++)
		it_sleep_ms(1);
}

static void stop_reads(void)
{
	atomic_store(&reading, false);
	pthread_join(reader, NULL);
	CHECKF(atomic_load(&reads_bad) == 0, "%d evals beside the changes failed", atomic_load(&reads_bad));
}

static void create(const char *name)
{
	struct it_response r;
	char path[64];

	snprintf(path, sizeof(path), "/v1/layers/%s", name);
	it_call(&d, "PUT", path, "{\"num_features\": 2}", &r);
	CHECKF(r.status == 201, "PUT %s: %ld", path, r.status);
	it_response_finish(&r);
}

static long batches(const char *name)
{
	struct it_response r;
	char path[64];
	long n;

	snprintf(path, sizeof(path), "/v1/layers/%s", name);
	it_call(&d, "GET", path, NULL, &r);
	n = (long)json_integer_value(it_get(r.json, "state", "num_batches_tracked", NULL));
	if (r.status != 200)
		n = -1;
	it_response_finish(&r);
	return n;
}

static void test_change_waits_its_turn(void)
{
	struct step first, second;
	int before;

	create("reads");
	create("a");
	create("b");
	start_reads();
	it_touch(hold_path, "");
	start_step(&first, "a");
	it_wait_commit_queue(&d, 1);
	start_step(&second, "b");
	CHECKF(it_wait_metric(&d, "batchnormd_changes_waiting 1", 20000),
		"a second change beside evals did not wait its turn (--fair-changes 1)");
	/* It waits before its handler: not computed, not queued, its layer unchanged. */
	CHECKF(it_wait_metric(&d, "batchnormd_commit_queue 1", 0), "the waiting change reached the committer");
	CHECKF(batches("b") == 0, "layer b changed while its step waited its turn");
	/* And the one polling thread is free: evals go on meanwhile. */
	before = atomic_load(&reads_ok);
	for (int i = 0; i < 2000 && atomic_load(&reads_ok) < before + 5; i++)
		it_sleep_ms(1);
	CHECKF(atomic_load(&reads_ok) >= before + 5, "evals stopped while a change waited its turn");
	/* Waiting its turn is not a slow client: past --request-timeout 2, it is not cut. */
	it_sleep_ms(3000);
	unlink(hold_path);
	finish_step(&first, "the change that ran");
	finish_step(&second, "the change that waited its turn");
	CHECKF(batches("a") == 1 && batches("b") == 1, "after both steps: a %ld, b %ld batches, expected 1 and 1",
		batches("a"), batches("b"));
	CHECKF(it_wait_metric(&d, "batchnormd_changes_waiting 0", 20000), "a change still waits after all were answered");
	stop_reads();
}

static void test_many_beside_reads(void)
{
	static struct step steps[THREADS][STEPS_EACH];
	struct it_response r;
	json_t *entries;
	bool in_order = true;

	create("many");
	start_reads();
	for (int k = 0; k < STEPS_EACH; k++) {
		for (int t = 0; t < THREADS; t++)
			start_step(&steps[t][k], "many");
		for (int t = 0; t < THREADS; t++)
			finish_step(&steps[t][k], "one of 80 steps beside evals");
	}
	stop_reads();
	CHECKF(batches("many") == THREADS * STEPS_EACH, "layer many: %ld batches after %d steps",
		batches("many"), THREADS * STEPS_EACH);
	it_call(&d, "GET", "/v1/layers/many/history?limit=1000", NULL, &r);
	entries = it_get(r.json, "steps", NULL);
	CHECKF(json_array_size(entries) == THREADS * STEPS_EACH, "history of many: %zu entries, expected %d",
		json_array_size(entries), THREADS * STEPS_EACH);
	for (size_t i = 0; i < json_array_size(entries); i++)
		if (json_integer_value(it_get(json_array_get(entries, i), "step", NULL)) != (json_int_t)i + 1)
			in_order = false;
	CHECKF(in_order, "history of many: the steps are not 1..%d in order", THREADS * STEPS_EACH);
	it_response_finish(&r);
}

static void test_alone_no_limit(void)
{
	struct step steps[3];

	create("alone");
	/* No eval for over twice the daemon's one-second window: the limit is off. */
	it_sleep_ms(2500);
	it_touch(hold_path, "");
	for (int i = 0; i < 3; i++)
		start_step(&steps[i], "alone");
	CHECKF(it_wait_commit_queue(&d, 3), "with no other request, 3 changes were not run at once");
	CHECKF(it_wait_metric(&d, "batchnormd_changes_waiting 0", 0), "a change alone waited its turn");
	unlink(hold_path);
	for (int i = 0; i < 3; i++)
		finish_step(&steps[i], "a change alone");
	CHECKF(batches("alone") == 3, "layer alone: %ld batches, expected 3", batches("alone"));
}

/*
 * A change waiting its turn at SIGTERM, the commit before it held for
 * held_ms: within the 30 s grace both are answered 200. Past it the daemon
 * stops libmicrohttpd, which must find no connection suspended: the waiting
 * change is resumed then, and answered 200 or 503 shutting_down.
 */
static void waiting_at_shutdown(const char *a, const char *b, long held_ms)
{
	struct step first, second;

	create(a);
	create(b);
	start_reads();
	it_touch(hold_path, "");
	start_step(&first, a);
	it_wait_commit_queue(&d, 1);
	start_step(&second, b);
	CHECKF(it_wait_metric(&d, "batchnormd_changes_waiting 1", 20000), "the second change did not wait its turn");
	stop_reads();
	CHECK(kill(d.pid, SIGTERM) == 0);
	it_sleep_ms(held_ms);
	unlink(hold_path);
	finish_step(&first, "at SIGTERM, the change that ran");
	pthread_join(second.thread, NULL);
	CHECKF(second.status == 200 || (held_ms > 30000 && second.status == 503),
		"at SIGTERM (commit held %ld ms), the change that waited its turn: %ld", held_ms, second.status);
	CHECKF(it_daemon_wait(&d) == 0, "batchnormd did not exit 0 with a change waiting its turn at SIGTERM "
		"(commit held %ld ms)", held_ms);
}

static void test_waiting_at_shutdown(void)
{
	waiting_at_shutdown("c", "e", 300);
}

static void test_waiting_past_grace(void)
{
	waiting_at_shutdown("f", "g", 31000);
}

int main(int argc, char **argv)
{
	static const char *const args[] = { "--threads", "1", "--fair-changes", "1", "--request-timeout", "2", NULL };

	if (it_daemon_init(&d, argc, argv) < 0)
		return 77;
	/* There changes run on the store workers, which bound them, and take no turns (test_store_workers.c). */
	if (it_skip_on_pg("changes take turns beside reads on the polling threads only, not on the store workers")) {
		it_daemon_finish(&d);
		return 77;
	}
	snprintf(hold_path, sizeof(hold_path), "%s/hold", d.dir);
	setenv("BATCHNORMD_TEST_HOLD_COMMIT", hold_path, 1);
	if (!CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not start with --threads 1 --fair-changes 1 "
			"--request-timeout 2"))
		goto out;
	test_change_waits_its_turn();
	test_many_beside_reads();
	test_alone_no_limit();
	test_waiting_at_shutdown();
	if (CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not restart"))
		test_waiting_past_grace();
out:
	unlink(hold_path);
	it_daemon_finish(&d);
	return it_exit_status("http_fair");
}
