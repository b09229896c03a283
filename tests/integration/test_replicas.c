/*
 * test_replicas.c: three daemons on one PostgreSQL database behave as one.
 *
 * - storm: 16 threads x 25 train steps on one layer, round-robin over the
 *   three replicas: every step answers 200, num_batches_tracked is 400, the
 *   history holds steps 1..400, and replaying them in that order through
 *   libbatchnorm gives bit-equal running statistics (no lost update);
 * - read-your-writes: a train step on one replica, then GET and eval on the
 *   two others, each time: they see that step's state and the same ETag;
 *   an ETag read before a change on another replica is refused by If-Match;
 *   a layer deleted or created again on one is gone, or new, on the others;
 * - calibration batches posted at once through every replica all count;
 * - kill -9 of one replica mid-load: every step any replica acknowledged is
 *   in the history read through the survivors, replayed bit-equal;
 * - PostgreSQL stopped and started under load: 503 store_unavailable (and
 *   /readyz 503) while it is down, 200s again after, nothing acknowledged lost.
 *
 * Every input has its own channel-0 mean (k + 0.75), which names it in the
 * history. Skips unless run on PostgreSQL (suite integration-pg).
 */
#include "harness.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bn/batchnorm.h"

#define REPLICAS 3
#define THREADS 16
#define STEPS 25
#define TOTAL (THREADS * STEPS)
#define MAX_K 1000
#define C IT_STEP_C
#define N IT_STEP_N

static struct it_daemon r[REPLICAS];
static atomic_bool dead[REPLICAS];

static long train(int replica, const char *layer, int k, struct it_response *res)
{
	char body[512], path[128];

	it_step_json(k, body, sizeof(body));
	snprintf(path, sizeof(path), "/v1/layers/%s/train", layer);
	it_call(&r[replica], "POST", path, body, res);
	return res->status;
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

/*
 * Read layer's whole history through replica into a new array, check it is
 * steps 1..n, replay it in order and compare the running statistics with
 * the history's and the state's; mark each input's k in seen. Returns n.
 */
static long replay(int replica, const char *layer, bool seen[MAX_K])
{
	struct bn_config cfg;
	struct bn_state st = { 0 };
	struct bn_error err;
	const size_t shape[2] = { N, C };
	struct bn_tensor x = { 0 }, y = { 0 };
	struct it_response h, s;
	char path[160];
	float bm[C], bv[C];
	long n = -1;
	bool diverged = false;

	snprintf(path, sizeof(path), "/v1/layers/%s/history?limit=1000", layer);
	it_call(&r[replica], "GET", path, NULL, &h);
	snprintf(path, sizeof(path), "/v1/layers/%s/state", layer);
	it_call(&r[replica], "GET", path, NULL, &s);
	bn_config_default(&cfg, C);
	if (!CHECKF(h.status == 200 && s.status == 200, "history %ld, state %ld", h.status, s.status) ||
	    !CHECK(bn_state_init(&st, &cfg) == 0) || !CHECK(bn_tensor_init(&x, 2, shape, 64, &err) == 0) ||
	    !CHECK(bn_tensor_init(&y, 2, shape, 64, &err) == 0))
		goto out;
	const json_t *steps = it_get(h.json, "steps", NULL);
	for (size_t i = 0; i < json_array_size(steps); i++) {
		const json_t *e = json_array_get(steps, i);
		double m0 = json_number_value(json_array_get(json_object_get(e, "batch_mean"), 0));
		long k = lround(m0 - 0.75);

		CHECKF(json_integer_value(json_object_get(e, "step")) == (json_int_t)i + 1,
			"%s: history entry %zu is not step %zu", layer, i, i + 1);
		if (!CHECKF(k >= 0 && k < MAX_K && !seen[k], "%s: step %zu names input %ld, unknown or twice",
				layer, i + 1, k))
			goto out;
		seen[k] = true;
		it_step_values((int)k, x.data);
		CHECK(bn_forward_train(&cfg, &st, &x, &y, bm, bv, &err) == 0);
		if (!diverged && !(same_floats(json_object_get(e, "batch_mean"), bm, C) &&
				same_floats(json_object_get(e, "running_mean"), st.running_mean, C) &&
				same_floats(json_object_get(e, "running_var"), st.running_var, C))) {
			CHECKF(false, "%s step %zu: the stored running stats differ from a sequential replay", layer, i + 1);
			diverged = true;
		}
	}
	n = (long)json_array_size(steps);
	CHECKF(json_integer_value(it_get(s.json, "num_batches_tracked", NULL)) == n,
		"%s: num_batches_tracked %lld, history %ld steps", layer,
		(long long)json_integer_value(it_get(s.json, "num_batches_tracked", NULL)), n);
	CHECKF(same_floats(it_get(s.json, "running_mean", NULL), st.running_mean, C) &&
		same_floats(it_get(s.json, "running_var", NULL), st.running_var, C),
		"%s: the state differs from %ld sequential steps", layer, n);
out:
	it_response_finish(&h);
	it_response_finish(&s);
	bn_tensor_finish(&x);
	bn_tensor_finish(&y);
	bn_state_finish(&st);
	return n;
}

static void create(int replica, const char *layer)
{
	struct it_response res;
	char path[128];

	snprintf(path, sizeof(path), "/v1/layers/%s", layer);
	it_call(&r[replica], "PUT", path, "{\"num_features\": 2}", &res);
	CHECKF(res.status == 201, "PUT %s: %ld", path, res.status);
	it_response_finish(&res);
}

/* A loader thread: train steps on layer, round-robin over the live replicas. */
struct loader {
	pthread_t thread;
	const char *layer;
	int id, first_k, count, replicas;
	atomic_bool *acked;       /* [MAX_K] */
	atomic_bool *stop;
	atomic_int ok, unavailable, other;
};

static void *load(void *arg)
{
	struct loader *w = arg;

	for (int s = 0; s < w->count && !(w->stop && atomic_load(w->stop)); s++) {
		struct it_response res;
		int k = w->first_k + s, target = (w->id + s) % w->replicas;

		while (atomic_load(&dead[target]))
			target = (target + 1) % w->replicas;
		long status = train(target, w->layer, k, &res);
		if (status == 200) {
			atomic_store(&w->acked[k], true);
			atomic_fetch_add(&w->ok, 1);
		} else if (status == 503) {
			it_check_problem(&res, 503, "store_unavailable", "train while PostgreSQL is down");
			atomic_fetch_add(&w->unavailable, 1);
		} else if (!atomic_load(&dead[target])) {
			CHECKF(false, "%s: train on replica %d: %ld %.200s", w->layer, target, status, res.body);
			atomic_fetch_add(&w->other, 1);
		}
		it_response_finish(&res);
		if (w->stop)
			usleep(5000);
	}
	return NULL;
}

static void test_storm(void)
{
	static atomic_bool acked[MAX_K];
	struct loader w[THREADS];
	bool seen[MAX_K] = { 0 };
	int ok = 0;

	create(0, "storm");
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct loader){ .layer = "storm", .id = i, .first_k = i * STEPS, .count = STEPS,
			.replicas = REPLICAS, .acked = acked };
		CHECK(pthread_create(&w[i].thread, NULL, load, &w[i]) == 0);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(w[i].thread, NULL);
		ok += atomic_load(&w[i].ok);
	}
	CHECKF(ok == TOTAL, "%d of %d train steps answered 200", ok, TOTAL);
	long n = replay(1, "storm", seen);
	CHECKF(n == TOTAL, "history holds %ld steps, expected %d", n, TOTAL);
	int lost = 0;
	for (int k = 0; k < TOTAL; k++)
		lost += atomic_load(&acked[k]) && !seen[k];
	CHECKF(lost == 0, "%d acknowledged steps lost", lost);
	printf("storm: %d/%d steps acknowledged over %d replicas, history %ld steps, lost %d\n",
		ok, TOTAL, REPLICAS, n, lost);
}

/* After each train step on one replica, GET and eval on the two others see it. */
static void test_read_your_writes(void)
{
	int checks = 0, good = 0;

	create(1, "ryw");
	for (int i = 0; i < 60; i++) {
		struct it_response t, g, e, g2;
		int a = i % REPLICAS, b = (i + 1) % REPLICAS, c = (i + 2) % REPLICAS;

		train(a, "ryw", i, &t);
		it_call(&r[b], "GET", "/v1/layers/ryw", NULL, &g);
		it_call(&r[c], "POST", "/v1/layers/ryw/eval", "{\"input\": [[1.0, 2.0]]}", &e);
		it_call(&r[c], "GET", "/v1/layers/ryw", NULL, &g2);
		bool ok = t.status == 200 && g.status == 200 && e.status == 200 &&
			json_integer_value(it_get(g.json, "state", "num_batches_tracked", NULL)) == i + 1 &&
			json_equal(it_get(g.json, "state", "running_mean", NULL), it_get(t.json, "running_mean", NULL)) &&
			!strcmp(g.etag, g2.etag) && g.etag[0];
		/* eval with the running stats the step left: (x - mean) / sqrt(var + eps). */
		float m0 = it_json_f32(json_array_get(json_object_get(t.json, "running_mean"), 0));
		float v0 = it_json_f32(json_array_get(json_object_get(t.json, "running_var"), 0));
		float want = (1.0f - m0) / sqrtf(v0 + 1e-5f);
		float got = it_json_f32(json_array_get(json_array_get(it_get(e.json, "output", NULL), 0), 0));
		ok = ok && fabsf(got - want) <= 1e-5f * (1.0f + fabsf(want));
		CHECKF(ok, "step %d on replica %d: replica %d saw %lld steps, eval on %d gave %g (want %g)", i + 1,
			a, b, (long long)json_integer_value(it_get(g.json, "state", "num_batches_tracked", NULL)), c,
			(double)got, (double)want);
		checks++;
		good += ok;
		it_response_finish(&t);
		it_response_finish(&g);
		it_response_finish(&e);
		it_response_finish(&g2);
	}
	printf("read-your-writes: %d/%d steps seen at once by GET and eval on the other replicas\n", good, checks);
}

/* PATCH layer on replica with If-Match: etag; the status. */
static long patch_if_match(int replica, const char *etag, char *new_etag, size_t size)
{
	char header[300];
	const char *headers[] = { header, NULL };
	static const char body[] = "{\"eps\": 0.001}";
	struct it_response res;
	long status;

	snprintf(header, sizeof(header), "If-Match: %s", etag);
	it_request(&r[replica], "PATCH", "/v1/layers/im", headers, body, strlen(body), &res);
	status = res.status;
	snprintf(new_etag, size, "%s", res.etag);
	it_response_finish(&res);
	return status;
}

/* An ETag read on one replica is stale on the others once any of them changed the layer. */
static void test_if_match(void)
{
	struct it_response t, g;
	char etag[256], seen[256];

	create(0, "im");
	it_call(&r[0], "GET", "/v1/layers/im", NULL, &g);
	snprintf(etag, sizeof(etag), "%s", g.etag);
	it_response_finish(&g);
	train(1, "im", 7, &t);
	CHECK(t.status == 200);
	it_response_finish(&t);
	CHECKF(patch_if_match(2, etag, seen, sizeof(seen)) == 412,
		"PATCH on replica 2 with the ETag read on replica 0 before a step on replica 1 was not refused");
	CHECKF(patch_if_match(0, etag, seen, sizeof(seen)) == 412,
		"PATCH on replica 0 with its own stale ETag was not refused");
	it_call(&r[2], "GET", "/v1/layers/im", NULL, &g);
	snprintf(etag, sizeof(etag), "%s", g.etag);
	it_response_finish(&g);
	CHECKF(patch_if_match(0, etag, seen, sizeof(seen)) == 200,
		"PATCH on replica 0 with the current ETag read on replica 2 was refused");
	it_call(&r[1], "GET", "/v1/layers/im", NULL, &g);
	CHECKF(!strcmp(g.etag, seen) && strcmp(seen, etag), "replica 1 shows ETag %s after the PATCH gave %s",
		g.etag, seen);
	it_response_finish(&g);
	printf("If-Match across replicas: stale ETags refused, the current one accepted, the new ETag the same everywhere\n");
}

/* A layer deleted or created again on one replica is gone, or new, on the others. */
static void test_delete_create(void)
{
	struct it_response g, x;
	char old_etag[256];

	it_call(&r[0], "GET", "/v1/layers/im", NULL, &g);
	snprintf(old_etag, sizeof(old_etag), "%s", g.etag);
	it_response_finish(&g);
	it_call(&r[1], "DELETE", "/v1/layers/im", NULL, &x);
	CHECKF(x.status == 204, "DELETE on replica 1: %ld", x.status);
	it_response_finish(&x);
	it_call(&r[0], "GET", "/v1/layers/im", NULL, &g);
	CHECKF(g.status == 404, "GET on replica 0 of a layer deleted on replica 1: %ld", g.status);
	it_response_finish(&g);
	it_call(&r[2], "GET", "/v1/layers", NULL, &g);
	CHECKF(g.status == 200 && !strstr(g.body, "\"im\""), "replica 2 still lists the deleted layer");
	it_response_finish(&g);
	create(2, "im");
	it_call(&r[0], "GET", "/v1/layers/im/state", NULL, &g);
	CHECKF(g.status == 200 && strcmp(g.etag, old_etag) &&
		json_integer_value(it_get(g.json, "num_batches_tracked", NULL)) == 0,
		"replica 0 after the layer was created again on replica 2: %ld, ETag %s (was %s)", g.status,
		g.etag, old_etag);
	it_response_finish(&g);
	printf("delete and create across replicas: gone everywhere, then new everywhere (a new ETag)\n");
}

/* A calibration poster: batches posted round-robin over the replicas. */
struct poster {
	pthread_t thread;
	int id, ok;
};

static void *post_batches(void *arg)
{
	struct poster *p = arg;
	char body[512];

	for (int s = 0; s < 10; s++) {
		struct it_response res;

		it_step_json(p->id * 10 + s, body, sizeof(body));
		it_call(&r[(p->id + s) % REPLICAS], "POST", "/v1/layers/cal/calibration", body, &res);
		if (CHECKF(res.status == 200, "calibration post: %ld %.200s", res.status, res.body))
			p->ok++;
		it_response_finish(&res);
	}
	return NULL;
}

/* Calibration batches posted at once through every replica are all counted. */
static void test_calibration(void)
{
	struct poster p[4];
	struct it_response g;
	int ok = 0;

	create(1, "cal");
	for (int i = 0; i < 4; i++) {
		p[i] = (struct poster){ .id = i };
		CHECK(pthread_create(&p[i].thread, NULL, post_batches, &p[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(p[i].thread, NULL);
		ok += p[i].ok;
	}
	it_call(&r[2], "GET", "/v1/layers/cal/calibration", NULL, &g);
	json_int_t batches = json_integer_value(it_get(g.json, "batches", NULL));
	json_int_t count = json_integer_value(it_get(g.json, "count", NULL));
	CHECKF(g.status == 200 && batches == ok && count == (json_int_t)ok * N,
		"calibration after %d posts over %d replicas: %lld batches, %lld values", ok, REPLICAS,
		(long long)batches, (long long)count);
	it_response_finish(&g);
	printf("calibration: %d batches posted over %d replicas, %lld counted\n", ok, REPLICAS, (long long)batches);
}

/* Wait (bounded) until the loaders have acknowledged at least n steps in all. */
static void wait_acks(struct loader *w, int count, int n)
{
	for (int t = 0; t < 3000; t++) {
		int ok = 0;

		for (int i = 0; i < count; i++)
			ok += atomic_load(&w[i].ok);
		if (ok >= n)
			return;
		usleep(10000);
	}
}

static int count_acked(atomic_bool *acked, const bool *seen, int *lost)
{
	int n = 0;

	*lost = 0;
	for (int k = 0; k < MAX_K; k++) {
		n += atomic_load(&acked[k]);
		*lost += atomic_load(&acked[k]) && !seen[k];
	}
	return n;
}

static void test_kill_replica(void)
{
	static atomic_bool acked[MAX_K];
	struct loader w[8];
	bool seen[MAX_K] = { 0 };
	int lost;

	create(0, "crash");
	for (int i = 0; i < 8; i++) {
		w[i] = (struct loader){ .layer = "crash", .id = i, .first_k = i * 40, .count = 40,
			.replicas = REPLICAS, .acked = acked };
		CHECK(pthread_create(&w[i].thread, NULL, load, &w[i]) == 0);
	}
	wait_acks(w, 8, 60);
	atomic_store(&dead[2], true);
	it_daemon_kill(&r[2]);
	for (int i = 0; i < 8; i++)
		pthread_join(w[i].thread, NULL);
	long n = replay(0, "crash", seen);
	int acks = count_acked(acked, seen, &lost);
	CHECKF(lost == 0, "%d acknowledged steps lost after kill -9 of a replica", lost);
	printf("kill -9 of replica 2 mid-load: %d steps acknowledged, history %ld steps, lost %d\n", acks, n, lost);
}

static void test_store_restart(void)
{
	static atomic_bool acked[MAX_K];
	static atomic_bool stop;
	struct loader w[4];
	bool seen[MAX_K] = { 0 };
	struct it_response res;
	int lost, before = 0, down = 0, after = 0;

	create(0, "outage");
	for (int i = 0; i < 4; i++) {
		w[i] = (struct loader){ .layer = "outage", .id = i, .first_k = i * 200, .count = 200,
			.replicas = 2, .acked = acked, .stop = &stop };
		CHECK(pthread_create(&w[i].thread, NULL, load, &w[i]) == 0);
	}
	wait_acks(w, 4, 30);
	for (int i = 0; i < 4; i++)
		before += atomic_load(&w[i].ok);
	CHECK(it_pg_server("stop") == 0);
	usleep(500000);
	it_call(&r[0], "GET", "/readyz", NULL, &res);
	CHECKF(res.status == 503, "/readyz with PostgreSQL down: %ld", res.status);
	it_response_finish(&res);
	for (int t = 0; t < 500 && down == 0; t++, usleep(10000))
		for (int i = 0; i < 4; i++)
			down += atomic_load(&w[i].unavailable);
	CHECKF(down > 0, "no 503 while PostgreSQL was down");
	CHECK(it_pg_server("start") == 0);
	for (int t = 0; t < 300; t++, usleep(100000)) {
		it_call(&r[1], "GET", "/readyz", NULL, &res);
		long st = res.status;
		it_response_finish(&res);
		if (st == 200)
			break;
	}
	int ok0 = 0;
	for (int i = 0; i < 4; i++)
		ok0 += atomic_load(&w[i].ok);
	wait_acks(w, 4, ok0 + 40);
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++) {
		pthread_join(w[i].thread, NULL);
		after += atomic_load(&w[i].ok);
	}
	CHECKF(after >= ok0 + 40, "only %d steps acknowledged after PostgreSQL came back", after - ok0);
	long n = replay(1, "outage", seen);
	int acks = count_acked(acked, seen, &lost);
	CHECKF(lost == 0, "%d acknowledged steps lost over the PostgreSQL restart", lost);
	printf("PostgreSQL stopped and started under load: %d acknowledged before, %d answers 503 while down, "
		"%d acknowledged in all, history %ld steps, lost %d\n", before, down, acks, n, lost);
}

static pthread_mutex_t end_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t end_cond = PTHREAD_COND_INITIALIZER;
static bool ended;
static pthread_t starters[REPLICAS];
static atomic_int starts_done;

/*
 * Start one replica, then live until the test ends: the daemon is killed
 * when the thread that forked it exits (PR_SET_PDEATHSIG).
 */
static void *start_one(void *arg)
{
	struct it_daemon *one = arg;

	CHECKF(it_daemon_start(one, NULL) == 0, "a replica did not start beside the others");
	atomic_fetch_add(&starts_done, 1);
	pthread_mutex_lock(&end_lock);
	while (!ended)
		pthread_cond_wait(&end_cond, &end_lock);
	pthread_mutex_unlock(&end_lock);
	return NULL;
}

static void end_starters(void)
{
	pthread_mutex_lock(&end_lock);
	ended = true;
	pthread_cond_broadcast(&end_cond);
	pthread_mutex_unlock(&end_lock);
	for (int i = 0; i < REPLICAS; i++)
		pthread_join(starters[i], NULL);
}

/* The three start at once on a new database: one migrates it, the others wait and find it done. */
static bool start_together(void)
{
	unsigned before = it_failures();
	long version = -1, rows = -1;

	for (int i = 0; i < REPLICAS; i++)
		CHECK(pthread_create(&starters[i], NULL, start_one, &r[i]) == 0);
	for (int t = 0; t < 6000 && atomic_load(&starts_done) < REPLICAS; t++)
		usleep(10000);
	CHECK(it_pg_sql(&r[0], "SELECT max(version) FROM batchnormd_schema", &version) == 0);
	CHECK(it_pg_sql(&r[0], "SELECT count(*) FROM batchnormd_schema", &rows) == 0);
	CHECKF(version == 2 && rows == 1, "schema version %ld in %ld rows after three replicas started", version, rows);
	printf("started together: %d replicas, schema version %ld (%ld row)\n", REPLICAS, version, rows);
	return it_failures() == before;
}

int main(int argc, char **argv)
{
	if (!it_store_pg()) {
		printf("skip: replicas share a PostgreSQL database (suite integration-pg)\n");
		return 77;
	}
	for (int i = 0; i < REPLICAS; i++) {
		if (it_daemon_init(&r[i], argc, argv) < 0)
			return 77;
		if (i > 0)
			it_daemon_share(&r[i], &r[0]);
	}
	if (!start_together())
		goto out;
	test_storm();
	test_read_your_writes();
	test_if_match();
	test_delete_create();
	test_calibration();
	test_kill_replica();
	test_store_restart();
	for (int i = 0; i < 2; i++)
		CHECKF(it_daemon_stop(&r[i]) == 0, "replica %d did not exit 0 on SIGTERM", i);
out:
	for (int i = REPLICAS - 1; i >= 0; i--)
		it_daemon_finish(&r[i]);
	end_starters();
	return it_exit_status("http_replicas");
}
