/*
 * test_concurrency.c: concurrent train steps on one layer never lose an update.
 *
 * 16 threads each send 25 train steps to one layer, every step with its own
 * input whose channel means are distinct. Momentum updates do not commute,
 * so the check takes the order the server applied them from GET /history
 * (each entry's batch_mean names its input), replays the inputs in that
 * order through libbatchnorm's bn_forward_train, and requires bit-equal
 * running statistics after every step and at the end, and
 * num_batches_tracked 400. Meanwhile eval on another layer keeps answering.
 */
#include "harness.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/batchnorm.h"

#define THREADS 16
#define STEPS 25
#define TOTAL (THREADS * STEPS)
#define C IT_STEP_C
#define N IT_STEP_N

static struct it_daemon d;
static atomic_bool storm_done;
static atomic_uint eval_ok, eval_bad;

struct worker {
	pthread_t thread;
	int id;
	int ok;
};

static void *train_worker(void *arg)
{
	struct worker *w = arg;
	char body[512];

	for (int s = 0; s < STEPS; s++) {
		struct it_response r;

		it_step_json(w->id * STEPS + s, body, sizeof(body));
		it_call(&d, "POST", "/v1/layers/storm/train", body, &r);
		if (CHECKF(r.status == 200, "thread %d step %d: status %ld %.200s", w->id, s, r.status, r.body))
			w->ok++;
		it_response_finish(&r);
	}
	return NULL;
}

static void *eval_worker(void *arg)
{
	(void)arg;
	while (!atomic_load(&storm_done)) {
		struct it_response r;

		it_call(&d, "POST", "/v1/layers/calm/eval", "{\"input\": [[0.0, 1.0], [2.0, 3.0]]}", &r);
		bool ok = r.status == 200;
		it_response_finish(&r);
		/* Count only answers that came back while the storm still ran. */
		if (atomic_load(&storm_done))
			break;
		if (ok)
			atomic_fetch_add(&eval_ok, 1);
		else
			atomic_fetch_add(&eval_bad, 1);
	}
	return NULL;
}

static bool same_floats(const json_t *arr, const float *want, size_t n)
{
	float got[C];

	if (it_json_floats(arr, got, C) != (long)n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!it_same_f32(got[i], want[i]))
			return false;
	return true;
}

static void replay(const json_t *steps, const json_t *state)
{
	struct bn_config cfg;
	struct bn_state st = { 0 };
	struct bn_error err;
	const size_t shape[2] = { N, C };
	struct bn_tensor x = { 0 }, y = { 0 };
	float means[TOTAL][C], bm[C], bv[C];
	bool used[TOTAL] = { 0 };
	bool diverged = false;

	bn_config_default(&cfg, C);
	if (!CHECK(bn_state_init(&st, &cfg) == 0) || !CHECK(bn_tensor_init(&x, 2, shape, 64, &err) == 0) ||
			!CHECK(bn_tensor_init(&y, 2, shape, 64, &err) == 0))
		goto out;
	/* Each input's batch mean, as the server computes it: batch statistics do not depend on the state. */
	for (int k = 0; k < TOTAL; k++) {
		struct bn_state scratch;
		bn_state_init(&scratch, &cfg);
		it_step_values(k, x.data);
		CHECK(bn_forward_train(&cfg, &scratch, &x, &y, means[k], bv, &err) == 0);
		bn_state_finish(&scratch);
	}
	for (size_t i = 0; i < json_array_size(steps); i++) {
		const json_t *e = json_array_get(steps, i);
		int k = -1;

		CHECKF(json_integer_value(json_object_get(e, "step")) == (json_int_t)i + 1, "history entry %zu is not step %zu", i, i + 1);
		for (int j = 0; j < TOTAL && k < 0; j++)
			if (same_floats(json_object_get(e, "batch_mean"), means[j], C))
				k = j;
		if (!CHECKF(k >= 0, "step %zu: its batch_mean matches no input", i + 1) ||
				!CHECKF(!used[k], "step %zu: input %d applied twice", i + 1, k))
			goto out;
		used[k] = true;
		it_step_values(k, x.data);
		CHECK(bn_forward_train(&cfg, &st, &x, &y, bm, bv, &err) == 0);
		if (!diverged && !(same_floats(json_object_get(e, "running_mean"), st.running_mean, C) &&
				same_floats(json_object_get(e, "running_var"), st.running_var, C) &&
				json_integer_value(json_object_get(e, "num_batches_tracked")) == st.num_batches_tracked)) {
			CHECKF(false, "step %zu: the server's running stats differ from the replay in its order", i + 1);
			diverged = true;
		}
	}
	CHECKF(st.num_batches_tracked == TOTAL, "replayed %lld steps", (long long)st.num_batches_tracked);
	CHECKF(same_floats(json_object_get(state, "running_mean"), st.running_mean, C),
			"final running_mean differs from %d sequential steps", TOTAL);
	CHECKF(same_floats(json_object_get(state, "running_var"), st.running_var, C),
			"final running_var differs from %d sequential steps", TOTAL);
out:
	bn_tensor_finish(&x);
	bn_tensor_finish(&y);
	bn_state_finish(&st);
}

/*
 * One storm on a fresh daemon started with args: every step answered 200,
 * evals answered meanwhile, the layer equal to its history replayed.
 */
static void storm(const char *const args[], const char *what)
{
	struct worker workers[THREADS];
	pthread_t evaler;
	struct it_response r;
	int ok = 0;

	printf("# the storm %s\n", what);
	atomic_store(&storm_done, false);
	atomic_store(&eval_ok, 0);
	atomic_store(&eval_bad, 0);
	if (!CHECKF(it_daemon_start(&d, args) == 0, "batchnormd did not start (%s)", what))
		return;
	it_call(&d, "PUT", "/v1/layers/storm", "{\"num_features\": 2}", &r);
	CHECK(r.status == 201);
	it_response_finish(&r);
	it_call(&d, "PUT", "/v1/layers/calm", "{\"num_features\": 2}", &r);
	CHECK(r.status == 201);
	it_response_finish(&r);

	CHECK(pthread_create(&evaler, NULL, eval_worker, NULL) == 0);
	for (int i = 0; i < THREADS; i++) {
		workers[i] = (struct worker){ .id = i };
		CHECK(pthread_create(&workers[i].thread, NULL, train_worker, &workers[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(workers[i].thread, NULL);
		ok += workers[i].ok;
	}
	atomic_store(&storm_done, true);
	pthread_join(evaler, NULL);
	CHECKF(ok == TOTAL, "%s: %d of %d train steps answered 200", what, ok, TOTAL);
	printf("evals answered during the storm: %u ok, %u not ok\n", atomic_load(&eval_ok), atomic_load(&eval_bad));
	CHECKF(atomic_load(&eval_ok) > 0, "%s: no eval completed while the train steps ran", what);
	CHECKF(atomic_load(&eval_bad) == 0, "%s: %u evals failed during the train steps", what, atomic_load(&eval_bad));

	it_call(&d, "GET", "/v1/layers/storm/state", NULL, &r);
	json_t *state = json_incref(r.json);
	CHECKF(json_integer_value(it_get(state, "num_batches_tracked", NULL)) == TOTAL,
			"%s: num_batches_tracked %lld after %d steps", what,
			(long long)json_integer_value(it_get(state, "num_batches_tracked", NULL)), TOTAL);
	it_response_finish(&r);
	it_call(&d, "GET", "/v1/layers/storm/history?limit=1000", NULL, &r);
	json_t *steps = it_get(r.json, "steps", NULL);
	if (CHECKF(json_array_size(steps) == TOTAL, "%s: history holds %zu steps, expected %d", what,
			json_array_size(steps), TOTAL))
		replay(steps, state);
	it_response_finish(&r);
	json_decref(state);
	CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM (%s)", what);
}

int main(int argc, char **argv)
{
	/* Every change at once, so they pile up in pending chains, the order the committer must keep. */
	static const char *const piled[] = { "--history-limit", "1000", "--sync", "normal", "--fair-changes", "0", NULL };
	/* As deployed: changes take turns beside the evals. */
	static const char *const turns[] = { "--history-limit", "1000", "--sync", "normal", NULL };

	if (it_daemon_init(&d, argc, argv) < 0)
		return 77;
	storm(piled, "with --fair-changes 0");
	it_daemon_finish(&d);
	if (it_daemon_init(&d, argc, argv) < 0)
		return 77;
	storm(turns, "with the default --fair-changes");
	it_daemon_finish(&d);
	return it_exit_status("http_concurrency");
}
