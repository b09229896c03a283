/*
 * store_workers.h: a pool of threads that run requests which wait on a
 * shared store (PostgreSQL), so that libmicrohttpd's polling threads never
 * do.
 *
 * A job waits in a FIFO of bounded length (jobs waiting plus jobs being
 * run, at most max) until one of the pool's threads takes it. The pool
 * knows nothing of HTTP: a job is a callback, run once, on a worker, or on
 * the stopping thread when the pool stopped before a worker took it.
 */
#ifndef BND_STORE_WORKERS_H
#define BND_STORE_WORKERS_H

#include <stdbool.h>
#include <stddef.h>

struct bnd_store_workers;

struct bnd_store_job {
	struct bnd_store_job *next; /* the pool's; the job's owner leaves it alone */
	/*
	 * Called once: on a worker with cancelled false, or, with cancelled
	 * true, on the thread in bnd_store_workers_stop() when the pool
	 * stopped before a worker took the job. The pool does not touch the
	 * job after this returns, so run may hand it back to its owner.
	 */
	void (*run)(struct bnd_store_job *job, bool cancelled);
};

/*
 * Start threads workers holding at most max jobs waiting or running.
 * 0, -EINVAL (threads or max 0), -ENOMEM, or pthread_create's error
 * (nothing left running).
 */
int bnd_store_workers_create(size_t threads, size_t max, struct bnd_store_workers **ret);

/*
 * Queue job. 0: job->run will be called. -EAGAIN: max jobs are already
 * waiting or running; -ESHUTDOWN: the pool is stopping. On error job is
 * not queued.
 */
int bnd_store_workers_submit(struct bnd_store_workers *w, struct bnd_store_job *job);

/*
 * Take no more jobs, cancel those no worker took yet (their run is
 * called here, cancelled), and wait for the running ones to end. Every
 * job submitted has been run when this returns. Accepts NULL; may be
 * called more than once.
 */
void bnd_store_workers_stop(struct bnd_store_workers *w);

/* Stop w (as above) and free it. Accepts NULL. */
void bnd_store_workers_destroy(struct bnd_store_workers *w);

#endif
