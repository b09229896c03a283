/*
 * test_commit.c: server/commit.c's committer against a fake backend: every
 * job queued while a commit is under way goes into the next transaction,
 * in order; a failed write or commit fails the whole group and nothing
 * else; -ECANCELED drops one job alone; the queue bound; stop drains.
 */
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>

#include "commit.h"

#define JOBS 10

struct fake {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool hold;          /* begin waits while set */
	bool in_begin;      /* a begin is waiting */
	int begins, commits, rollbacks;
	int fail_rc;        /* the second commit returns this */
	int written[64], n_written;
};

struct job {
	struct bnd_commit_job job; /* first */
	struct fake *f;
	int id;
	int write_rc;              /* what write returns */
	int done_rc;
	bool done;
};

static int done_order[64], n_done;

static int fake_begin(void *store)
{
	struct fake *f = store;

	pthread_mutex_lock(&f->lock);
	f->begins++;
	f->in_begin = true;
	pthread_cond_broadcast(&f->cond);
	while (f->hold)
		pthread_cond_wait(&f->cond, &f->lock);
	f->in_begin = false;
	pthread_mutex_unlock(&f->lock);
	return 0;
}

static int fake_commit(void *store)
{
	struct fake *f = store;
	int rc;

	pthread_mutex_lock(&f->lock);
	f->commits++;
	rc = f->commits == 2 ? f->fail_rc : 0;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static void fake_rollback(void *store)
{
	struct fake *f = store;

	pthread_mutex_lock(&f->lock);
	f->rollbacks++;
	pthread_mutex_unlock(&f->lock);
}

static int job_write(struct bnd_commit_job *j, void *store)
{
	struct job *job = (struct job *)j;
	struct fake *f = store;

	pthread_mutex_lock(&f->lock);
	f->written[f->n_written++] = job->id;
	pthread_mutex_unlock(&f->lock);
	return job->write_rc;
}

static void job_done(struct bnd_commit_job *j, int rc)
{
	struct job *job = (struct job *)j;

	pthread_mutex_lock(&job->f->lock);
	job->done_rc = rc;
	job->done = true;
	done_order[n_done++] = job->id;
	pthread_cond_broadcast(&job->f->cond);
	pthread_mutex_unlock(&job->f->lock);
}

static void fake_init(struct fake *f, struct bnd_commit_backend *b)
{
	*f = (struct fake){ .hold = true };
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	*b = (struct bnd_commit_backend){ f, fake_begin, fake_commit, fake_rollback };
	n_done = 0;
}

static void job_init(struct job *j, struct fake *f, int id, int write_rc)
{
	*j = (struct job){ .job = { .write = job_write, .done = job_done }, .f = f, .id = id,
		.write_rc = write_rc };
}

/* Wait until a begin is waiting on the hold. */
static void wait_in_begin(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	while (!f->in_begin)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
}

static void release(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	f->hold = false;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

static void wait_done(struct fake *f, int n)
{
	pthread_mutex_lock(&f->lock);
	while (n_done < n)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
}

/* Job 0 is held in its begin while 1..9 queue: they make one group, in order. */
static void test_group_and_order(int second_write_rc, int fail_commit)
{
	struct bnd_commit_backend b;
	struct bnd_committer *c;
	struct job jobs[JOBS];
	struct fake f;

	fake_init(&f, &b);
	assert(bnd_committer_create(&b, 64, &c) == 0);
	job_init(&jobs[0], &f, 0, 0);
	assert(bnd_committer_submit(c, &jobs[0].job) == 0);
	wait_in_begin(&f);
	for (int i = 1; i < JOBS; i++) {
		job_init(&jobs[i], &f, i, i == 4 ? second_write_rc : 0);
		assert(bnd_committer_submit(c, &jobs[i].job) == 0);
	}
	assert(bnd_committer_pending(c) == JOBS);
	/* The first group commits; the second meets what the case injects. */
	f.fail_rc = fail_commit;
	release(&f);
	wait_done(&f, JOBS);
	assert(f.begins == 2);
	for (int i = 0; i < JOBS; i++)
		assert(done_order[i] == i);
	assert(jobs[0].done_rc == 0);
	for (int i = 1; i < JOBS; i++) {
		int want = 0;

		if (second_write_rc == -ECANCELED && i == 4)
			want = -ECANCELED;
		else if (second_write_rc < 0 && second_write_rc != -ECANCELED)
			want = second_write_rc;
		else if (fail_commit)
			want = fail_commit;
		assert(jobs[i].done && jobs[i].done_rc == want);
	}
	if (second_write_rc < 0 && second_write_rc != -ECANCELED) {
		/* Written up to the failure, rolled back, never committed. */
		assert(f.n_written == 5 && f.rollbacks == 1 && f.commits == 1);
	} else {
		assert(f.n_written == JOBS && f.rollbacks == 0 && f.commits == 2);
		for (int i = 0; i < JOBS; i++)
			assert(f.written[i] == i);
	}
	bnd_committer_destroy(c);
}

/* The bound counts jobs queued and being committed; stop commits what is queued. */
static void test_bound_and_stop(void)
{
	struct bnd_commit_backend b;
	struct bnd_committer *c;
	struct job jobs[4];
	struct fake f;

	fake_init(&f, &b);
	assert(bnd_committer_create(&b, 3, &c) == 0);
	for (int i = 0; i < 4; i++)
		job_init(&jobs[i], &f, i, 0);
	assert(bnd_committer_submit(c, &jobs[0].job) == 0);
	wait_in_begin(&f);
	assert(bnd_committer_submit(c, &jobs[1].job) == 0);
	assert(bnd_committer_submit(c, &jobs[2].job) == 0);
	assert(bnd_committer_submit(c, &jobs[3].job) == -EAGAIN);
	assert(bnd_committer_pending(c) == 3);
	release(&f);
	bnd_committer_stop(c);
	assert(n_done == 3 && jobs[1].done_rc == 0 && jobs[2].done_rc == 0 && !jobs[3].done);
	assert(bnd_committer_pending(c) == 0);
	assert(bnd_committer_submit(c, &jobs[3].job) == -ESHUTDOWN);
	bnd_committer_stop(c); /* a second stop does nothing */
	bnd_committer_destroy(c);
	bnd_committer_destroy(NULL);
}

int main(void)
{
	test_group_and_order(0, 0);
	test_group_and_order(-ECANCELED, 0);
	test_group_and_order(-EIO, 0);
	test_group_and_order(0, -EIO);
	test_bound_and_stop();
	printf("commit: ok\n");
	return 0;
}
