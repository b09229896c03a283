/*
 * test_store_workers.c: on PostgreSQL no polling thread waits on the store.
 *
 * The test holds a layer's row locked from its own connection (BEGIN;
 * SELECT ... FOR UPDATE), so the daemon's change of that layer waits in
 * PostgreSQL, and then:
 *
 * - held: with --threads 1 (one polling thread), /healthz, /metrics, GET
 *   of another layer and eval of another layer all answer 200 while the
 *   step is held, and the held step is not cut by --request-timeout (it
 *   waits for the store, not for its client); once the row is released
 *   the step answers 200 and is stored;
 * - queue: with --commit-queue 2 and two steps held, a third request that
 *   reaches the store is refused with 503 commit_queue_full and
 *   Retry-After, and changes nothing; /healthz still answers;
 * - shutdown: SIGTERM with two steps held: the daemon waits for them,
 *   answers both 200 once the row is released, and exits 0;
 * - past the grace: SIGTERM with all 8 workers held for longer than the
 *   30 s grace: a step still queued is answered 503 shutting_down, the
 *   held ones are stored once released (the workers end before the store
 *   closes, no request is left suspended), and the daemon exits 0.
 *
 * Every wait is bounded (generous margins), so on a daemon whose polling
 * thread blocks the checks fail instead of hanging. Skips unless run on
 * PostgreSQL (suite integration-pg).
 */
#include "harness.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define STEP "{\"input\": [[1, 2], [3, 4]]}"
/* How long a request beside a held one may take; it should take milliseconds. */
#define PROMPT_MS 15000

/* A request sent on a thread of its own, so the test can wait for it with a deadline. */
struct call {
	const struct it_daemon *d;
	const char *method;
	char path[128];
	const char *body;
	struct it_response r;
	pthread_t t;
	atomic_bool done;
};

static void *call_main(void *arg)
{
	struct call *c = arg;

	it_call(c->d, c->method, c->path, c->body, &c->r);
	atomic_store(&c->done, true);
	return NULL;
}

static void call_start(struct call *c, const struct it_daemon *d, const char *method, const char *path,
		const char *body)
{
	memset(c, 0, sizeof(*c));
	c->d = d;
	c->method = method;
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->body = body;
	if (pthread_create(&c->t, NULL, call_main, c) != 0) {
		CHECKF(false, "cannot start a thread for %s %s", method, path);
		atomic_store(&c->done, true);
		c->t = pthread_self();
	}
}

/* Wait up to ms for c to be answered; whether it was. */
static bool call_wait(struct call *c, int ms)
{
	for (int waited = 0; waited < ms && !atomic_load(&c->done); waited += 10)
		it_sleep_ms(10);
	return atomic_load(&c->done);
}

static void call_finish(struct call *c)
{
	if (!pthread_equal(c->t, pthread_self()))
		pthread_join(c->t, NULL);
	it_response_finish(&c->r);
}

/* The test's own connection, holding layer name's row locked in an open transaction. */
static PGconn *lock_row(const struct it_daemon *d, const char *name)
{
	char sql[160];
	PGconn *c = PQconnectdb(d->store);
	PGresult *r;

	if (!CHECKF(PQstatus(c) == CONNECTION_OK, "cannot connect to %s: %s", d->store, PQerrorMessage(c))) {
		PQfinish(c);
		return NULL;
	}
	PQclear(PQexec(c, "BEGIN"));
	snprintf(sql, sizeof(sql), "SELECT id FROM layers WHERE name = '%s' FOR UPDATE", name);
	r = PQexec(c, sql);
	CHECKF(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "locking %s: %s", name,
		PQresultErrorMessage(r));
	PQclear(r);
	return c;
}

static void unlock_row(PGconn *c)
{
	if (!c)
		return;
	PQclear(PQexec(c, "COMMIT"));
	PQfinish(c);
}

/* Wait (up to 20 s) until a session of d's database waits for a row lock. */
static bool wait_lock_waiter(const struct it_daemon *d)
{
	for (int waited = 0; waited < 20000; waited += 20) {
		long n = 0;

		if (it_pg_sql(d, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
				"AND wait_event_type = 'Lock'", &n) == 0 && n > 0)
			return true;
		it_sleep_ms(20);
	}
	return CHECKF(false, "no daemon session ever waited for the locked row");
}

/*
 * Wait (up to 20 s) for /metrics to show n requests held by the store
 * workers, each /metrics bounded too: a daemon whose polling threads wait
 * on the store fails here instead of hanging the test.
 */
static bool wait_store_queue(const struct it_daemon *d, int n)
{
	char want[64];

	snprintf(want, sizeof(want), "\nbatchnormd_store_queue %d\n", n);
	for (int waited = 0; waited < 20000; waited += 20) {
		/* Left to its thread when it hangs: that ends when the store lets the polling thread go. */
		struct call *m = malloc(sizeof(*m));
		bool seen;

		if (!CHECK(m != NULL))
			return false;
		call_start(m, d, "GET", "/metrics", NULL);
		if (!call_wait(m, PROMPT_MS)) {
			CHECKF(false, "/metrics did not answer within %d ms while steps were held", PROMPT_MS);
			pthread_detach(m->t);
			return false;
		}
		seen = m->r.body && strstr(m->r.body, want);
		call_finish(m);
		free(m);
		if (seen)
			return true;
		it_sleep_ms(20);
	}
	return CHECKF(false, "/metrics never showed%s", want);
}

static long stored_batches(const struct it_daemon *d, const char *name)
{
	char sql[160];
	long n = -1;

	snprintf(sql, sizeof(sql), "SELECT num_batches_tracked FROM layers WHERE name = '%s'", name);
	if (it_pg_sql(d, sql, &n) < 0)
		return -1;
	return n;
}

static void create_layers(const struct it_daemon *d)
{
	static const char *const names[] = { "held", "other" };
	struct it_response r;

	for (size_t i = 0; i < 2; i++) {
		char path[64];

		snprintf(path, sizeof(path), "/v1/layers/%s", names[i]);
		it_call(d, "PUT", path, "{\"num_features\": 2}", &r);
		CHECKF(r.status == 201, "PUT %s: %ld", path, r.status);
		it_response_finish(&r);
	}
}

static bool start(struct it_daemon *d, int argc, char **argv, const char *const args[])
{
	if (it_daemon_init(d, argc, argv) < 0)
		return false;
	if (!CHECKF(it_daemon_start(d, args) == 0, "batchnormd did not start"))
		return false;
	create_layers(d);
	return true;
}

/* One polling thread; a step held in PostgreSQL leaves it free for everything else. */
static void test_held(int argc, char **argv)
{
	static const char *const args[] = { "--threads", "1", "--request-timeout", "2", NULL };
	static const struct { const char *method, *path, *body; } probes[] = {
		{ "GET", "/healthz", NULL },
		{ "GET", "/metrics", NULL },
		{ "GET", "/v1/layers/other", NULL },
		{ "POST", "/v1/layers/other/eval", STEP },
	};
	struct it_daemon d = { 0 };
	struct call step, probe;
	PGconn *lock;

	if (!start(&d, argc, argv, args))
		goto out;
	lock = lock_row(&d, "held");
	call_start(&step, &d, "POST", "/v1/layers/held/train", STEP);
	wait_lock_waiter(&d);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		call_start(&probe, &d, probes[i].method, probes[i].path, probes[i].body);
		if (CHECKF(call_wait(&probe, PROMPT_MS), "%s %s did not answer within %d ms while a step "
				"waited for a locked row", probes[i].method, probes[i].path, PROMPT_MS))
			CHECKF(probe.r.status == 200, "%s %s: %ld while a step was held", probes[i].method,
				probes[i].path, probe.r.status);
		else
			unlock_row(lock), lock = NULL; /* let the blocked thread go, so the test ends */
		call_finish(&probe);
	}
	/* Past --request-timeout: a step waiting for the store is not its client's fault. */
	it_sleep_ms(3000);
	CHECKF(!atomic_load(&step.done), "the held step was answered (%ld) before its row was released",
		step.r.status);
	unlock_row(lock);
	CHECKF(call_wait(&step, 20000), "the step did not answer once its row was released");
	CHECKF(step.r.status == 200, "the held step: %ld (curl %d), want 200", step.r.status, step.r.curl_code);
	call_finish(&step);
	CHECKF(stored_batches(&d, "held") == 1, "num_batches_tracked stored: %ld, want 1",
		stored_batches(&d, "held"));
	CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
out:
	it_daemon_finish(&d);
}

/* --commit-queue bounds the requests waiting for the store workers, reads too. */
static void test_queue(int argc, char **argv)
{
	static const char *const args[] = { "--commit-queue", "2", NULL };
	static const struct { const char *method, *path, *body; } refused[] = {
		{ "POST", "/v1/layers/held/train", STEP },
		{ "GET", "/v1/layers/other", NULL },
	};
	struct it_daemon d = { 0 };
	struct call step[2];
	struct it_response r;
	PGconn *lock;

	if (!start(&d, argc, argv, args))
		goto out;
	lock = lock_row(&d, "held");
	for (int i = 0; i < 2; i++)
		call_start(&step[i], &d, "POST", "/v1/layers/held/train", STEP);
	if (!wait_store_queue(&d, 2)) {
		unlock_row(lock);
		for (int i = 0; i < 2; i++)
			call_finish(&step[i]);
		goto out;
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		it_call(&d, refused[i].method, refused[i].path, refused[i].body, &r);
		it_check_problem(&r, 503, "commit_queue_full", refused[i].path);
		CHECKF(strcmp(r.retry_after, "1") == 0, "%s: Retry-After '%s', want 1", refused[i].path,
			r.retry_after);
		it_response_finish(&r);
	}
	it_call(&d, "GET", "/healthz", NULL, &r);
	CHECKF(r.status == 200, "/healthz with the queue full: %ld", r.status);
	it_response_finish(&r);
	unlock_row(lock);
	for (int i = 0; i < 2; i++) {
		CHECKF(call_wait(&step[i], 20000), "held step %d did not answer once released", i);
		CHECKF(step[i].r.status == 200, "held step %d: %ld", i, step[i].r.status);
		call_finish(&step[i]);
	}
	/* The refused step changed nothing. */
	CHECKF(stored_batches(&d, "held") == 2, "num_batches_tracked stored: %ld, want 2",
		stored_batches(&d, "held"));
	CHECKF(it_daemon_stop(&d) == 0, "batchnormd did not exit 0 on SIGTERM");
out:
	it_daemon_finish(&d);
}

/* SIGTERM while steps are held: they are answered, then the daemon exits 0. */
static void test_shutdown(int argc, char **argv)
{
	static const char *const args[] = { "--threads", "1", NULL };
	struct it_daemon d = { 0 };
	struct call step[2];
	PGconn *lock;
	pid_t pid;

	if (!start(&d, argc, argv, args))
		goto out;
	lock = lock_row(&d, "held");
	for (int i = 0; i < 2; i++)
		call_start(&step[i], &d, "POST", "/v1/layers/held/train", STEP);
	if (!wait_store_queue(&d, 2)) {
		unlock_row(lock);
		for (int i = 0; i < 2; i++)
			call_finish(&step[i]);
		goto out;
	}
	pid = d.pid;
	CHECK(kill(pid, SIGTERM) == 0);
	it_sleep_ms(1000);
	CHECKF(!atomic_load(&step[0].done) && !atomic_load(&step[1].done),
		"a held step was answered before its row was released");
	unlock_row(lock);
	for (int i = 0; i < 2; i++) {
		CHECKF(call_wait(&step[i], 20000), "held step %d did not answer after SIGTERM", i);
		CHECKF(step[i].r.status == 200, "held step %d after SIGTERM: %ld (curl %d)", i,
			step[i].r.status, step[i].r.curl_code);
		call_finish(&step[i]);
	}
	CHECKF(it_daemon_wait(&d) == 0, "batchnormd did not exit 0 after SIGTERM");
	CHECKF(stored_batches(&d, "held") == 2, "num_batches_tracked stored: %ld, want 2",
		stored_batches(&d, "held"));
out:
	it_daemon_finish(&d);
}

/*
 * SIGTERM with every worker held past the 30 s grace: what no worker took
 * is answered 503 shutting_down at once, the held ones are finished once
 * the row is released (all stored: the store stays open until the workers
 * are done), and the daemon exits 0.
 */
static void test_past_grace(int argc, char **argv)
{
	enum { WORKERS = 8 };
	static const char *const args[] = { "--threads", "1", "--store-workers", "8", NULL };
	struct it_daemon d = { 0 };
	struct call step[WORKERS], queued;
	PGconn *lock;

	if (!start(&d, argc, argv, args))
		goto out;
	lock = lock_row(&d, "held");
	for (int i = 0; i < WORKERS; i++)
		call_start(&step[i], &d, "POST", "/v1/layers/held/train", STEP);
	if (!wait_store_queue(&d, WORKERS)) {
		unlock_row(lock);
		for (int i = 0; i < WORKERS; i++)
			call_finish(&step[i]);
		goto out;
	}
	call_start(&queued, &d, "POST", "/v1/layers/held/train", STEP);
	wait_store_queue(&d, WORKERS + 1);
	CHECK(kill(d.pid, SIGTERM) == 0);
	if (CHECKF(call_wait(&queued, 45000), "the queued step was not answered past the grace"))
		it_check_problem(&queued.r, 503, "shutting_down", "a step no worker took by the end of the grace");
	for (int i = 0; i < WORKERS; i++)
		CHECKF(!atomic_load(&step[i].done), "held step %d ended before its row was released", i);
	unlock_row(lock);
	CHECKF(it_daemon_wait(&d) == 0, "batchnormd did not exit 0 after SIGTERM");
	call_finish(&queued);
	for (int i = 0; i < WORKERS; i++)
		call_finish(&step[i]);
	CHECKF(stored_batches(&d, "held") == WORKERS, "num_batches_tracked stored: %ld, want %d",
		stored_batches(&d, "held"), WORKERS);
out:
	it_daemon_finish(&d);
}

int main(int argc, char **argv)
{
	if (!it_store_pg()) {
		printf("skip: the store workers serve PostgreSQL (suite integration-pg)\n");
		return 77;
	}
	test_held(argc, argv);
	test_queue(argc, argv);
	test_shutdown(argc, argv);
	test_past_grace(argc, argv);
	return it_exit_status("http_store_workers");
}
