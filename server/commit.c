/*
 * commit.c: the committer thread (commit.h).
 *
 * One mutex guards the queue. A submitter appends under it and wakes the
 * thread; the thread swaps the whole queue out, writes it as one
 * transaction with the mutex released (so submitters keep queueing the
 * next group while this one syncs), then answers each job. The count of
 * jobs held (queued and being committed) is what max_queue bounds: it is
 * the memory changes waiting on the disk can take.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "commit.h"
#include "metrics.h"

struct bnd_committer {
	struct bnd_commit_backend b;
	size_t max_queue;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool started, stopping;
	struct bnd_commit_job *head, **tail; /* the queue, oldest first */
	size_t held;                         /* queued plus being committed */
};

/* Write every job of the group in one transaction. 0, or why it failed. */
static int write_group(struct bnd_committer *c, struct bnd_commit_job *group, bool *dropped)
{
	size_t i = 0;
	int rc = c->b.begin(c->b.store);

	if (rc < 0)
		return rc;
	for (struct bnd_commit_job *j = group; j; j = j->next, i++) {
		int w = j->write ? j->write(j, c->b.store) : 0;

		dropped[i] = w == -ECANCELED;
		if (w < 0 && w != -ECANCELED) {
			c->b.rollback(c->b.store);
			return w;
		}
	}
	return c->b.commit(c->b.store);
}

/* Commit one group and tell its jobs, in order. */
static void commit_group(struct bnd_committer *c, struct bnd_commit_job *group, size_t n)
{
	bool small[64] = { false };
	bool *dropped = n <= 64 ? small : calloc(n, sizeof(*dropped));
	size_t i = 0;
	int rc;

	/* Without room to remember which jobs to drop, the group fails as a whole. */
	rc = dropped ? write_group(c, group, dropped) : -ENOMEM;
	while (group) {
		struct bnd_commit_job *j = group;

		group = j->next;
		j->next = NULL;
		j->done(j, rc < 0 ? rc : dropped[i] ? -ECANCELED : 0);
		i++;
	}
	if (dropped != small)
		free(dropped);
}

static void *committer_main(void *arg)
{
	struct bnd_committer *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct bnd_commit_job *group;
		size_t n = 0;

		while (!c->head && !c->stopping)
			pthread_cond_wait(&c->wake, &c->lock);
		if (!c->head)
			break; /* stopping, and everything queued is committed */
		group = c->head;
		c->head = NULL;
		c->tail = &c->head;
		for (struct bnd_commit_job *j = group; j; j = j->next)
			n++;
		pthread_mutex_unlock(&c->lock);
		commit_group(c, group, n);
		bnd_metrics_commit_group(n);
		pthread_mutex_lock(&c->lock);
		c->held -= n;
		bnd_metrics_commit_queue(c->held);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int bnd_committer_create(const struct bnd_commit_backend *b, size_t max_queue,
		struct bnd_committer **ret)
{
	struct bnd_committer *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->b = *b;
	c->max_queue = max_queue;
	c->tail = &c->head;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	rc = pthread_create(&c->thread, NULL, committer_main, c);
	if (rc) {
		bnd_committer_destroy(c);
		return -rc;
	}
	c->started = true;
	*ret = c;
	return 0;
}

int bnd_committer_submit(struct bnd_committer *c, struct bnd_commit_job *job)
{
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	if (c->stopping) {
		rc = -ESHUTDOWN;
	} else if (c->held >= c->max_queue) {
		rc = -EAGAIN;
	} else {
		job->next = NULL;
		*c->tail = job;
		c->tail = &job->next;
		c->held++;
		bnd_metrics_commit_queue(c->held);
		pthread_cond_signal(&c->wake);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

size_t bnd_committer_pending(struct bnd_committer *c)
{
	size_t n;

	pthread_mutex_lock(&c->lock);
	n = c->held;
	pthread_mutex_unlock(&c->lock);
	return n;
}

void bnd_committer_stop(struct bnd_committer *c)
{
	bool join;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	join = c->started && !c->stopping;
	c->stopping = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	if (join)
		pthread_join(c->thread, NULL);
}

void bnd_committer_destroy(struct bnd_committer *c)
{
	if (!c)
		return;
	bnd_committer_stop(c);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
