/*
 * commit.h: group commit. One committer thread writes every change to the
 * store, as many in one transaction as were queued while the previous
 * transaction was syncing.
 *
 * A job is a change to write. Submitted jobs wait in a FIFO of bounded
 * length; the committer takes all of them at once, begins a transaction,
 * lets each job write itself in submission order, commits (one sync for
 * all), and then tells every job how it went, again in order. When the
 * transaction fails, every job in it is told so: nothing any of them wrote
 * is stored. The committer knows nothing of layers or SQL: the store is
 * reached through the begin/commit/rollback of a struct bnd_commit_backend
 * and the jobs' own write callbacks, so any store with transactions serves.
 */
#ifndef BND_COMMIT_H
#define BND_COMMIT_H

#include <stddef.h>

struct bnd_committer;

struct bnd_commit_job {
	struct bnd_commit_job *next; /* the committer's; the job's owner leaves it alone */
	/*
	 * Write the change into the open transaction (store is the backend's).
	 * 0: written. -ECANCELED: this job alone is dropped (it is told so and
	 * the others go on). Any other negative errno: the whole transaction
	 * fails. NULL: nothing to write; the job only waits for the others.
	 */
	int (*write)(struct bnd_commit_job *job, void *store);
	/*
	 * Called once, on the committer's thread, after the transaction: rc 0
	 * when its write is committed, else the failure. The committer does
	 * not touch the job after this returns, so done may hand it back to
	 * its owner (who may free it).
	 */
	void (*done)(struct bnd_commit_job *job, int rc);
};

struct bnd_commit_backend {
	void *store;
	int (*begin)(void *store);     /* 0 or a negative errno (then nothing is open) */
	int (*commit)(void *store);    /* 0, or a negative errno with everything rolled back */
	void (*rollback)(void *store);
};

/*
 * Start a committer on backend b (copied) that holds at most max_queue
 * jobs waiting or being committed. 0, -ENOMEM, or pthread_create's error.
 */
int bnd_committer_create(const struct bnd_commit_backend *b, size_t max_queue,
		struct bnd_committer **ret);

/*
 * Queue job for the next transaction. 0: job->done will be called.
 * -EAGAIN: max_queue jobs are already waiting or being committed;
 * -ESHUTDOWN: the committer is stopping. On error job is not queued.
 */
int bnd_committer_submit(struct bnd_committer *c, struct bnd_commit_job *job);

/*
 * Refuse new jobs, commit what is queued (every done is called), and
 * stop the thread. Call it once no more changes are expected, before the
 * store closes. Accepts NULL; a second call does nothing.
 */
void bnd_committer_stop(struct bnd_committer *c);

/* Jobs queued or being committed now, for /metrics. */
size_t bnd_committer_pending(struct bnd_committer *c);

/* Stop (if still running) and free. Accepts NULL. */
void bnd_committer_destroy(struct bnd_committer *c);

#endif
