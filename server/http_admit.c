/*
 * http_admit.c: a fair share of the polling threads between changes and
 * everything else (http_conn.h, bnd_admit_*).
 *
 * A change costs its polling thread the HTTP and JSON work of a request,
 * and, with group commit, no longer waits for the disk on it: a train load
 * on 32 connections then takes as much of libmicrohttpd's threads as it
 * has connections, and evals on a few connections beside it got a quarter
 * of their rate alone. So, while requests other than changes (and other
 * than probes) are being served, at most `limit` changes (--fair-changes,
 * by default half of the threads) run at once, from their
 * handler to their queued answer; a change beyond that waits its turn,
 * its body read and its connection suspended (it costs no CPU), in a FIFO,
 * and is resumed when a running change is answered. With no other request
 * in the last BUSY_WINDOW_MS, changes run without the limit, so a train
 * load alone is as fast as before.
 *
 * One lock orders the two sides, as in http_defer.c: a change queued here
 * is suspended under the lock, so a release that resumes it never comes
 * before its suspension.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "conns.h"
#include "http_conn.h"
#include "metrics.h"

/* How long after the last request other than a change the limit holds. */
#define BUSY_WINDOW_MS 1000

static pthread_mutex_t admit_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned running;                 /* changes admitted and not yet answered */
static struct conn_state *head, *tail;   /* waiting their turn, oldest first */
static size_t waiting;
static atomic_llong other_ms;           /* when a request other than a change last began */
static bool open_all;                    /* shutting down: every change runs */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bnd_admit_other(void)
{
	int64_t t = now_ms();

	/* A store from every polling thread at each request would bounce the line between cores. */
	if (atomic_load_explicit(&other_ms, memory_order_relaxed) != t)
		atomic_store_explicit(&other_ms, t, memory_order_relaxed);
}

/* Whether one more change may run now (under admit_lock). */
static bool room(unsigned limit)
{
	if (open_all || limit == 0 || running < limit)
		return true;
	return now_ms() - atomic_load_explicit(&other_ms, memory_order_relaxed) > BUSY_WINDOW_MS;
}

bool bnd_admit_change(struct conn_state *cs)
{
	bool now;

	if (cs->admitted)
		return true;
	pthread_mutex_lock(&admit_lock);
	now = room(cs->req.d->opt.fair_changes);
	if (now) {
		running++;
		cs->admitted = true;
	} else {
		cs->admit_next = NULL;
		if (tail)
			tail->admit_next = cs;
		else
			head = cs;
		tail = cs;
		bnd_metrics_changes_waiting(++waiting);
		/* The request is all in: it waits for the server now, not for its client. */
		bnd_conns_answering(cs->req.conn);
		MHD_suspend_connection(cs->req.conn);
	}
	pthread_mutex_unlock(&admit_lock);
	return now;
}

/* Resume the oldest waiting changes while there is room (under admit_lock). */
static void admit_waiting(unsigned limit)
{
	while (head && room(limit)) {
		struct conn_state *cs = head;

		head = cs->admit_next;
		if (!head)
			tail = NULL;
		bnd_metrics_changes_waiting(--waiting);
		running++;
		cs->admitted = true;
		MHD_resume_connection(cs->req.conn);
	}
}

void bnd_admit_release(struct conn_state *cs)
{
	if (!cs->admitted || cs->admit_released)
		return;
	cs->admit_released = true;
	pthread_mutex_lock(&admit_lock);
	running--;
	admit_waiting(cs->req.d->opt.fair_changes);
	pthread_mutex_unlock(&admit_lock);
}

void bnd_admit_open_all(void)
{
	pthread_mutex_lock(&admit_lock);
	open_all = true;
	admit_waiting(0);
	pthread_mutex_unlock(&admit_lock);
}
