/*
 * test_writers.c: calibration and import changes go through the committer
 * like train steps do, driven through the daemon's test hooks (see
 * test_commit.c): BATCHNORMD_TEST_HOLD_COMMIT holds the committer after its
 * writes and before COMMIT, BATCHNORMD_TEST_FAIL_COMMIT fails commits.
 *
 * A calibration post is answered after its commit: while held, the post is
 * queued (batchnormd_commit_queue 1), not answered, and GET calibration
 * (the committed state) has none; released, it answers 200 and GET shows
 * the batch.
 *
 * Posts chain on the pending calibration: two posts queued behind a held
 * commit both count (batches 2). A failed commit drops the chain: a post
 * and a calibration commit computed from it both answer 503; the
 * calibration and the layer read back as before.
 *
 * A train step and a stats step share the chain too: a train step held,
 * a calibration commit queued behind it applies to the step's running
 * stats (num_batches_tracked 1 in its answer).
 *
 * An import is one change, answered after its commit: while held its new
 * layer is not served and the existing one unchanged; a failed commit of
 * an import of one existing and one new layer leaves neither changed, and
 * If-Match is judged against the pending state (a train step queued makes
 * the committed ETag stale).
 */
#include "harness.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct it_daemon d;
static char hold_path[256], fail_path[256];

struct call {
	pthread_t thread;
	const char *method;
	char path[96];
	const char *body;
	const char *header;
	long status;
	char *answer;
	atomic_bool done;
};

static void *send_call(void *arg)
{
	struct call *c = arg;
	const char *headers[] = { c->header, NULL };
	struct it_response r;

	it_request(&d, c->method, c->path, c->header ? headers : NULL, c->body, c->body ? strlen(c->body) : 0, &r);
	c->status = r.status;
	c->answer = strdup(r.body ? r.body : "");
	it_response_finish(&r);
	atomic_store(&c->done, true);
	return NULL;
}

static void start(struct call *c, const char *method, const char *path, const char *body)
{
	c->method = method;
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->body = body;
	atomic_init(&c->done, false);
	CHECK(pthread_create(&c->thread, NULL, send_call, c) == 0);
}

static void join(struct call *c, long status, const char *what)
{
	pthread_join(c->thread, NULL);
	CHECKF(c->status == status, "%s: %ld, expected %ld: %.300s", what, c->status, status, c->answer);
}

static void finish(struct call *c)
{
	free(c->answer);
	c->answer = NULL;
}

static void ok(const char *method, const char *path, const char *body, long status)
{
	struct it_response r;

	it_call(&d, method, path, body, &r);
	CHECKF(r.status == status, "%s %s: %ld, expected %ld: %.200s", method, path, r.status, status, r.body);
	it_response_finish(&r);
}

/* GET the calibration's batches, or -1 when it answers 404. */
static long long batches(const char *layer)
{
	struct it_response r;
	char path[128];
	long long n = -1;

	snprintf(path, sizeof(path), "/v1/layers/%s/calibration", layer);
	it_call(&d, "GET", path, NULL, &r);
	if (r.status == 200)
		n = json_integer_value(it_get(r.json, "batches", NULL));
	else
		it_check_problem(&r, 404, "no_calibration", "GET calibration with none committed");
	it_response_finish(&r);
	return n;
}

#define BATCH "{\"input\": [[1.0, 2.0], [3.0, 6.0], [-1.0, 0.5]]}"

static void test_post_after_commit(void)
{
	static struct call c;

	ok("PUT", "/v1/layers/cal", "{\"num_features\": 2}", 201);
	it_touch(hold_path, "");
	start(&c, "POST", "/v1/layers/cal/calibration", BATCH);
	it_wait_commit_queue(&d, 1);
	it_sleep_ms(300);
	CHECKF(!atomic_load(&c.done), "a calibration post was answered (%ld) before its commit", c.status);
	CHECKF(batches("cal") == -1, "a calibration not yet committed is visible to GET");
	unlink(hold_path);
	join(&c, 200, "the held calibration post");
	finish(&c);
	CHECKF(batches("cal") == 1, "the committed post is not in GET calibration");
	printf("a calibration post held before its commit was not answered, then answered 200\n");
}

static void test_post_chain(void)
{
	static struct call a, b, cm;
	struct it_snapshot before;

	it_touch(hold_path, "");
	start(&a, "POST", "/v1/layers/cal/calibration", BATCH);
	it_wait_commit_queue(&d, 1);
	start(&b, "POST", "/v1/layers/cal/calibration", BATCH);
	it_wait_commit_queue(&d, 2);
	unlink(hold_path);
	join(&a, 200, "the first of two queued posts");
	join(&b, 200, "the second of two queued posts");
	finish(&a);
	finish(&b);
	CHECKF(batches("cal") == 3, "two posts queued together: batches %lld, expected 3", batches("cal"));

	/* A failed commit drops the chain: the post and the commit computed from it. */
	it_snapshot_take(&d, "cal", &before);
	it_touch(hold_path, "");
	it_touch(fail_path, "1\n");
	start(&a, "POST", "/v1/layers/cal/calibration", BATCH);
	it_wait_commit_queue(&d, 1);
	start(&cm, "POST", "/v1/layers/cal/calibration/commit", "{\"variance\": \"population\"}");
	it_wait_commit_queue(&d, 2);
	unlink(hold_path);
	join(&a, 503, "a post whose commit failed");
	join(&cm, 503, "a calibration commit computed from a failed post");
	finish(&a);
	finish(&cm);
	CHECKF(access(fail_path, F_OK) != 0, "the injected failure was not used");
	CHECKF(batches("cal") == 3, "after a failed chain: batches %lld, expected 3", batches("cal"));
	{
		struct it_snapshot after;

		it_snapshot_take(&d, "cal", &after);
		CHECKF(it_snapshot_equal(&before, &after), "the layer changed though its calibration commit failed");
		it_snapshot_finish(&after);
	}
	it_snapshot_finish(&before);
}

static void test_train_then_commit(void)
{
	static struct call t, cm;

	ok("PUT", "/v1/layers/tc", "{\"num_features\": 2}", 201);
	ok("POST", "/v1/layers/tc/calibration", BATCH, 200);
	it_touch(hold_path, "");
	start(&t, "POST", "/v1/layers/tc/train", BATCH);
	it_wait_commit_queue(&d, 1);
	start(&cm, "POST", "/v1/layers/tc/calibration/commit", "{\"variance\": \"population\"}");
	it_wait_commit_queue(&d, 2);
	unlink(hold_path);
	join(&t, 200, "a held train step");
	join(&cm, 200, "a calibration commit queued behind a train step");
	CHECKF(strstr(cm.answer, "\"num_batches_tracked\": 1"),
		"the calibration commit did not apply to the queued train step's state: %.300s", cm.answer);
	finish(&t);
	finish(&cm);
	CHECKF(batches("tc") == -1, "the calibration is still open after its commit");
}

#define IMPORT "{\"state_dict\": {\"a.running_mean\": [0.25, 0.5], \"a.running_var\": [2.0, 3.0], " \
	"\"b.running_mean\": [1.0, 2.0], \"b.running_var\": [4.0, 5.0]}, \"mode\": \"replace\"}"

#define IMPORT_A "{\"state_dict\": {\"a.running_mean\": [0.25, 0.5], \"a.running_var\": [2.0, 3.0]}, " \
	"\"mode\": \"update\"}"

static void test_import(void)
{
	static struct call im, stale;
	struct it_snapshot before, after;
	struct it_response r;
	char ifm[300];

	ok("PUT", "/v1/layers/im.a", "{\"num_features\": 2}", 201);
	it_snapshot_take(&d, "im.a", &before);

	/* Held: not answered, nothing served yet. */
	it_touch(hold_path, "");
	start(&im, "POST", "/v1/import?prefix=im.", IMPORT);
	it_wait_commit_queue(&d, 1);
	it_sleep_ms(300);
	CHECKF(!atomic_load(&im.done), "an import was answered (%ld) before its commit", im.status);
	it_call(&d, "GET", "/v1/layers/im.b", NULL, &r);
	CHECKF(r.status == 404, "a layer whose import is not committed is served: %ld", r.status);
	it_response_finish(&r);
	it_snapshot_take(&d, "im.a", &after);
	CHECKF(it_snapshot_equal(&before, &after), "an import not committed is visible on im.a");
	it_snapshot_finish(&after);
	unlink(hold_path);
	join(&im, 200, "the held import");
	finish(&im);
	ok("GET", "/v1/layers/im.b", NULL, 200);
	it_snapshot_finish(&before);

	/* A failed commit: neither the existing layer nor the new one changes. */
	ok("DELETE", "/v1/layers/im.b", NULL, 204);
	it_snapshot_take(&d, "im.a", &before);
	it_touch(fail_path, "1\n");
	start(&im, "POST", "/v1/import?prefix=im.", IMPORT);
	join(&im, 503, "an import whose commit failed");
	CHECKF(strstr(im.answer, "nothing changed") != NULL, "the 503 does not say nothing changed: %.300s",
		im.answer);
	finish(&im);
	it_snapshot_take(&d, "im.a", &after);
	CHECKF(it_snapshot_equal(&before, &after), "im.a changed though the import's commit failed");
	it_snapshot_finish(&after);
	ok("GET", "/v1/layers/im.b", NULL, 404);

	/* If-Match judged against the pending state: a queued train step makes the committed ETag stale. */
	snprintf(ifm, sizeof(ifm), "If-Match: %s", before.etag);
	it_touch(hold_path, "");
	start(&im, "POST", "/v1/layers/im.a/train", BATCH);
	it_wait_commit_queue(&d, 1);
	stale.header = ifm;
	start(&stale, "POST", "/v1/import?prefix=im.", IMPORT_A);
	/* Refused at once; an import judged against the committed state would wait for the held commit. */
	for (int i = 0; i < 200 && !atomic_load(&stale.done); i++)
		it_sleep_ms(50);
	CHECKF(atomic_load(&stale.done), "an import with the committed ETag behind a queued step was not refused");
	unlink(hold_path);
	join(&im, 200, "the train step the import was judged against");
	finish(&im);
	join(&stale, 412, "an import with the committed ETag behind a queued step");
	CHECKF(strstr(stale.answer, "im.a is at ETag"), "the 412 is not about im.a's ETag: %.300s", stale.answer);
	finish(&stale);
	/* With the ETag the step answered, the same import goes through. */
	{
		const char *headers[] = { ifm, NULL };

		it_call(&d, "GET", "/v1/layers/im.a", NULL, &r);
		snprintf(ifm, sizeof(ifm), "If-Match: %s", r.etag);
		it_response_finish(&r);
		it_request(&d, "POST", "/v1/import?prefix=im.", headers, IMPORT_A, strlen(IMPORT_A), &r);
		CHECKF(r.status == 200, "an import with the current ETag: %ld %.300s", r.status, r.body);
		it_response_finish(&r);
	}
	it_snapshot_finish(&before);
}

int main(int argc, char **argv)
{
	if (it_skip_on_pg("changes chaining on pending state are the committer's, SQLite's: on PostgreSQL each change is its own transaction"))
		return 77;
	if (it_daemon_init(&d, argc, argv) < 0)
		return 77;
	snprintf(hold_path, sizeof(hold_path), "%s/hold", d.dir);
	snprintf(fail_path, sizeof(fail_path), "%s/fail", d.dir);
	setenv("BATCHNORMD_TEST_HOLD_COMMIT", hold_path, 1);
	setenv("BATCHNORMD_TEST_FAIL_COMMIT", fail_path, 1);
	/* Changes queue behind each other beside reads here: none waits its turn (test_fair.c). */
	if (!CHECKF(it_daemon_start(&d, (const char *const[]){ "--fair-changes", "0", NULL }) == 0,
			"batchnormd did not start"))
		goto out;
	test_post_after_commit();
	test_post_chain();
	test_train_then_commit();
	test_import();
	CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
out:
	unlink(hold_path);
	unlink(fail_path);
	it_daemon_finish(&d);
	return it_exit_status("http_writers");
}
