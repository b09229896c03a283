/*
 * test_commit.c: group commit when a commit fails and when the commit
 * queue is full, driven through the daemon's test hooks: while the file
 * BATCHNORMD_TEST_HOLD_COMMIT names exists the committer waits before it
 * commits what it wrote (so a group can be filled without timing), and while
 * the one BATCHNORMD_TEST_FAIL_COMMIT names exists commits fail (as many
 * as the number it holds, or all), as on a full disk.
 *
 * A failed chain: with commits held, 8 train steps on one layer are all
 * queued (batchnormd_commit_queue says so), each computed from the one
 * before; one commit then fails. Every step answers 503, though only one
 * commit failed: the steps in later groups were computed from the dropped
 * chain. The layer reads back as last committed (state, ETag, history),
 * and service resumes: the next step commits, from the committed state
 * (the layer then equals a control layer given the same two steps).
 *
 * Every commit failing: 4 steps on each of two layers, all 503, both
 * layers unchanged; then, the failure gone, steps commit again.
 *
 * A full queue: with --commit-queue 2 and commits held, of 6 concurrent
 * steps exactly 2 wait and 4 answer 503 commit_queue_full with Retry-After
 * at once; released, the 2 commit.
 *
 * A wait holds no thread: with --threads 1 and a train step's commit held,
 * evals, GETs and a history page are answered while the step waits.
 *
 * A wait is not a slow client: with --request-timeout 2, a step whose
 * commit is held for 4.5 s is answered 200 once released, not cut.
 */
#include "harness.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_STEPS 8

static struct it_daemon d;
static char hold_path[256], fail_path[256];

struct step {
	pthread_t thread;
	char path[64];
	char body[128];
	long status;
	char code[64];
	char retry_after[32];
};

static atomic_int finished;

static void *send_step(void *arg)
{
	struct step *s = arg;
	struct it_response r;

	it_call(&d, "POST", s->path, s->body, &r);
	s->status = r.status;
	snprintf(s->code, sizeof(s->code), "%s", json_string_value(it_get(r.json, "code", NULL)) ?
		json_string_value(it_get(r.json, "code", NULL)) : "");
	snprintf(s->retry_after, sizeof(s->retry_after), "%s", r.retry_after);
	it_response_finish(&r);
	atomic_fetch_add(&finished, 1);
	return NULL;
}

static void start_step(struct step *s, const char *layer, int k)
{
	snprintf(s->path, sizeof(s->path), "/v1/layers/%s/train", layer);
	snprintf(s->body, sizeof(s->body), "{\"input\": [[%d.0, 1.0], [%d.5, 3.0]]}", k, k + 1);
	CHECK(pthread_create(&s->thread, NULL, send_step, s) == 0);
}

static void ok(const char *method, const char *path, const char *body, long status)
{
	struct it_response r;

	it_call(&d, method, path, body, &r);
	CHECKF(r.status == status, "%s %s: %ld, expected %ld: %.200s", method, path, r.status, status, r.body);
	it_response_finish(&r);
}

static void check_unchanged(const char *name, const struct it_snapshot *before, const char *history_before)
{
	struct it_snapshot after;
	struct it_response r;
	char path[128];

	it_snapshot_take(&d, name, &after);
	CHECKF(it_snapshot_equal(before, &after), "layer %s changed though its steps failed:\n  before %s %.300s\n"
		"  after  %s %.300s", name, before->etag, before->state, after.etag, after.state);
	it_snapshot_finish(&after);
	snprintf(path, sizeof(path), "/v1/layers/%s/history", name);
	it_call(&d, "GET", path, NULL, &r);
	CHECKF(r.body && !strcmp(r.body, history_before), "the history of %s changed though its steps failed", name);
	it_response_finish(&r);
}

static char *history_of(const char *name)
{
	struct it_response r;
	char path[128], *h;

	snprintf(path, sizeof(path), "/v1/layers/%s/history", name);
	it_call(&d, "GET", path, NULL, &r);
	h = strdup(r.body ? r.body : "");
	it_response_finish(&r);
	return h;
}

static void test_failed_chain(void)
{
	static struct step steps[MAX_STEPS];
	struct it_snapshot before;
	struct it_response ra, rc;
	char *hist;

	ok("PUT", "/v1/layers/a", "{\"num_features\": 2}", 201);
	ok("PUT", "/v1/layers/control", "{\"num_features\": 2}", 201);
	ok("POST", "/v1/layers/a/train", "{\"input\": [[0.5, 1.0], [2.0, -3.0]]}", 200);
	ok("POST", "/v1/layers/control/train", "{\"input\": [[0.5, 1.0], [2.0, -3.0]]}", 200);
	it_snapshot_take(&d, "a", &before);
	hist = history_of("a");

	it_touch(hold_path, "");
	it_touch(fail_path, "1\n");
	for (int i = 0; i < MAX_STEPS; i++)
		start_step(&steps[i], "a", 10 * i);
	if (it_wait_commit_queue(&d, MAX_STEPS))
		printf("%d steps on one layer queued behind a held commit\n", MAX_STEPS);
	unlink(hold_path);
	for (int i = 0; i < MAX_STEPS; i++) {
		pthread_join(steps[i].thread, NULL);
		CHECKF(steps[i].status == 503 && !strcmp(steps[i].code, "store_unavailable"),
			"step %d of a failed chain: %ld %s, expected 503 store_unavailable", i, steps[i].status,
			steps[i].code);
	}
	CHECKF(access(fail_path, F_OK) != 0, "the injected failure was not used");
	check_unchanged("a", &before, hist);

	/* Service resumes, from the committed state. */
	it_call(&d, "POST", "/v1/layers/a/train", "{\"input\": [[1.0, 2.0], [4.0, 8.0]]}", &ra);
	CHECKF(ra.status == 200, "the step after the failure: %ld %.200s", ra.status, ra.body);
	it_call(&d, "POST", "/v1/layers/control/train", "{\"input\": [[1.0, 2.0], [4.0, 8.0]]}", &rc);
	CHECKF(ra.body && rc.body && !strcmp(ra.body, rc.body),
		"the step after the failure was not computed from the committed state:\n  %.300s\n  control %.300s",
		ra.body, rc.body);
	CHECK(json_integer_value(it_get(ra.json, "num_batches_tracked", NULL)) == 2);
	it_response_finish(&ra);
	it_response_finish(&rc);
	free(hist);
	hist = history_of("a");
	CHECKF(strstr(hist, "\"step\": 2") && !strstr(hist, "\"step\": 3"), "history after recovery: %.300s", hist);
	free(hist);
	it_snapshot_finish(&before);
}

static void test_every_commit_fails(void)
{
	static struct step steps[MAX_STEPS];
	struct it_snapshot before[2];
	char *hist[2];
	const char *names[2] = { "b1", "b2" };

	for (int l = 0; l < 2; l++) {
		char path[64];

		snprintf(path, sizeof(path), "/v1/layers/%s", names[l]);
		ok("PUT", path, "{\"num_features\": 2}", 201);
		snprintf(path, sizeof(path), "/v1/layers/%s/train", names[l]);
		ok("POST", path, "{\"input\": [[0.5, 1.0], [2.0, -3.0]]}", 200);
		it_snapshot_take(&d, names[l], &before[l]);
		hist[l] = history_of(names[l]);
	}
	it_touch(hold_path, "");
	it_touch(fail_path, "");
	for (int i = 0; i < MAX_STEPS; i++)
		start_step(&steps[i], names[i % 2], i);
	it_wait_commit_queue(&d, MAX_STEPS);
	unlink(hold_path);
	for (int i = 0; i < MAX_STEPS; i++) {
		pthread_join(steps[i].thread, NULL);
		CHECKF(steps[i].status == 503, "step %d while every commit fails: %ld", i, steps[i].status);
	}
	for (int l = 0; l < 2; l++)
		check_unchanged(names[l], &before[l], hist[l]);
	unlink(fail_path);
	for (int l = 0; l < 2; l++) {
		struct it_response r;
		char path[64];

		snprintf(path, sizeof(path), "/v1/layers/%s/train", names[l]);
		it_call(&d, "POST", path, "{\"input\": [[0.5, 1.0], [2.0, -3.0]]}", &r);
		CHECKF(r.status == 200 && json_integer_value(it_get(r.json, "num_batches_tracked", NULL)) == 2,
			"%s after the failure is gone: %ld %.200s", names[l], r.status, r.body);
		it_response_finish(&r);
		it_snapshot_finish(&before[l]);
		free(hist[l]);
	}
}

static void test_full_queue(void)
{
	static struct step steps[6];
	int held = 0, refused = 0;

	ok("PUT", "/v1/layers/q", "{\"num_features\": 2}", 201);
	it_touch(hold_path, "");
	atomic_store(&finished, 0);
	for (int i = 0; i < 6; i++)
		start_step(&steps[i], "q", i);
	/* Only 2 can wait: the other 4 are answered at once, whatever the order they came in. */
	for (int i = 0; i < 2000 && atomic_load(&finished) < 4; i++)
		it_sleep_ms(10);
	CHECKF(atomic_load(&finished) == 4, "%d of 6 steps answered while 2 wait for a held commit",
		atomic_load(&finished));
	it_wait_commit_queue(&d, 2);
	unlink(hold_path);
	for (int i = 0; i < 6; i++) {
		pthread_join(steps[i].thread, NULL);
		if (steps[i].status == 200) {
			held++;
		} else {
			refused++;
			CHECKF(steps[i].status == 503 && !strcmp(steps[i].code, "commit_queue_full") &&
				strtol(steps[i].retry_after, NULL, 10) > 0, "a step over the queue: %ld %s Retry-After '%s'",
				steps[i].status, steps[i].code, steps[i].retry_after);
		}
	}
	CHECKF(held == 2 && refused == 4, "%d steps committed and %d refused, expected 2 and 4", held, refused);
	struct it_response r;
	it_call(&d, "GET", "/v1/layers/q/state", NULL, &r);
	CHECK(json_integer_value(it_get(r.json, "num_batches_tracked", NULL)) == 2);
	it_response_finish(&r);
}

static void *watchdog(void *arg)
{
	(void)arg;
	/* Only a daemon that blocks its one thread waits this long: let it go, and fail. */
	for (int i = 0; i < 3000 && access(hold_path, F_OK) == 0; i++)
		it_sleep_ms(10);
	unlink(hold_path);
	return NULL;
}

static void test_wait_holds_no_thread(void)
{
	static struct step s;
	pthread_t dog;

	ok("PUT", "/v1/layers/e", "{\"num_features\": 2}", 201);
	atomic_store(&finished, 0);
	it_touch(hold_path, "");
	CHECK(pthread_create(&dog, NULL, watchdog, NULL) == 0);
	start_step(&s, "e", 1);
	it_wait_commit_queue(&d, 1);
	for (int i = 0; i < 10; i++)
		ok("POST", "/v1/layers/e/eval", "{\"input\": [[1.0, 2.0], [3.0, 4.0]]}", 200);
	ok("GET", "/v1/layers/e", NULL, 200);
	ok("GET", "/v1/layers/e/history", NULL, 200);
	ok("GET", "/readyz", NULL, 200);
	CHECKF(atomic_load(&finished) == 0, "the train step was answered before its commit was released");
	unlink(hold_path);
	pthread_join(s.thread, NULL);
	pthread_join(dog, NULL);
	CHECKF(s.status == 200, "the held step, released: %ld", s.status);
}

static void test_wait_past_deadline(void)
{
	static struct step s;

	ok("PUT", "/v1/layers/slow", "{\"num_features\": 2}", 201);
	it_touch(hold_path, "");
	start_step(&s, "slow", 1);
	it_wait_commit_queue(&d, 1);
	it_sleep_ms(4500);
	unlink(hold_path);
	pthread_join(s.thread, NULL);
	CHECKF(s.status == 200, "a step held past --request-timeout answered %ld, expected 200", s.status);
}

int main(int argc, char **argv)
{
	/* Groups are filled from many changes at once: none waits its turn beside the reads here (test_fair.c). */
	const char *args[] = { "--fair-changes", "0", NULL };
	const char *queue_args[] = { "--commit-queue", "2", "--request-timeout", "2", "--threads", "1",
		"--fair-changes", "0", NULL };

	if (it_skip_on_pg("the committer (groups, its queue, --commit-queue) is SQLite's: on PostgreSQL each change is its own transaction"))
		return 77;
	if (it_daemon_init(&d, argc, argv) < 0)
		return 77;
	snprintf(hold_path, sizeof(hold_path), "%s/hold", d.dir);
	snprintf(fail_path, sizeof(fail_path), "%s/fail", d.dir);
	setenv("BATCHNORMD_TEST_HOLD_COMMIT", hold_path, 1);
	setenv("BATCHNORMD_TEST_FAIL_COMMIT", fail_path, 1);
	if (!CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not start"))
		goto out;
	test_failed_chain();
	test_every_commit_fails();
	CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
	if (!CHECKF(it_daemon_start(&d, queue_args) == 0, "batchnormd did not start with --commit-queue 2 --threads 1"))
		goto out;
	test_full_queue();
	test_wait_holds_no_thread();
	test_wait_past_deadline();
	CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
out:
	unlink(hold_path);
	unlink(fail_path);
	it_daemon_finish(&d);
	return it_exit_status("http_commit");
}
