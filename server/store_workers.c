/*
 * store_workers.c: the pool of threads that run requests waiting on a
 * shared store (store_workers.h).
 *
 * One mutex guards the FIFO and the count of jobs held (waiting or
 * running); the workers sleep on one condition variable. The gauge
 * batchnormd_store_queue shows that count.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "metrics.h"
#include "store_workers.h"

struct bnd_store_workers {
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct bnd_store_job *head, *tail;
	size_t held;      /* waiting or running */
	size_t max;
	bool stopping;
	bool joined;
	size_t threads;   /* started */
	pthread_t *tid;
};

/* Take the next job, or NULL once stopping. Under the lock. */
static struct bnd_store_job *take(struct bnd_store_workers *w)
{
	struct bnd_store_job *job;

	while (!w->head && !w->stopping)
		pthread_cond_wait(&w->work, &w->lock);
	if (w->stopping)
		return NULL; /* the stopping thread cancels what is still queued */
	job = w->head;
	w->head = job->next;
	if (!w->head)
		w->tail = NULL;
	return job;
}

static void *worker_main(void *arg)
{
	struct bnd_store_workers *w = arg;
	struct bnd_store_job *job;

	pthread_mutex_lock(&w->lock);
	while ((job = take(w))) {
		pthread_mutex_unlock(&w->lock);
		job->run(job, false);
		pthread_mutex_lock(&w->lock);
		w->held--;
		bnd_metrics_store_queue(w->held);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int bnd_store_workers_create(size_t threads, size_t max, struct bnd_store_workers **ret)
{
	struct bnd_store_workers *w;
	int rc = 0;

	if (threads == 0 || max == 0)
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->tid = calloc(threads, sizeof(*w->tid));
	if (!w->tid) {
		free(w);
		return -ENOMEM;
	}
	w->max = max;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->work, NULL);
	for (; w->threads < threads; w->threads++) {
		rc = pthread_create(&w->tid[w->threads], NULL, worker_main, w);
		if (rc) {
			bnd_store_workers_destroy(w);
			return -rc;
		}
	}
	*ret = w;
	return 0;
}

int bnd_store_workers_submit(struct bnd_store_workers *w, struct bnd_store_job *job)
{
	int rc = 0;

	pthread_mutex_lock(&w->lock);
	if (w->stopping) {
		rc = -ESHUTDOWN;
	} else if (w->held >= w->max) {
		rc = -EAGAIN;
	} else {
		job->next = NULL;
		if (w->tail)
			w->tail->next = job;
		else
			w->head = job;
		w->tail = job;
		w->held++;
		bnd_metrics_store_queue(w->held);
		pthread_cond_signal(&w->work);
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

void bnd_store_workers_stop(struct bnd_store_workers *w)
{
	struct bnd_store_job *job;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->work);
	job = w->head;
	w->head = w->tail = NULL;
	pthread_mutex_unlock(&w->lock);
	/* No worker takes these any more: they are answered here. */
	while (job) {
		struct bnd_store_job *next = job->next;

		job->run(job, true);
		pthread_mutex_lock(&w->lock);
		w->held--;
		bnd_metrics_store_queue(w->held);
		pthread_mutex_unlock(&w->lock);
		job = next;
	}
	if (w->joined)
		return;
	for (size_t i = 0; i < w->threads; i++)
		pthread_join(w->tid[i], NULL);
	w->joined = true;
}

void bnd_store_workers_destroy(struct bnd_store_workers *w)
{
	if (!w)
		return;
	bnd_store_workers_stop(w);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->lock);
	free(w->tid);
	free(w);
}
