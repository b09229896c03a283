/*
 * layer_change.h: a change of one layer as a job for the committer
 * (commit.h), and what its commit or failure does to the layer.
 *
 * The submitter computes the change from the layer's pending snapshot (or
 * its committed one when nothing is pending) with the layer's write_lock
 * held, and queues it with that lock still held, so a layer's changes
 * reach the committer in the order they were computed. The change then
 * becomes the layer's pending snapshot, the base of the next one.
 *
 * Once the commit is done, on the committer's thread: a committed change
 * is published (readers see it) and stops being pending; a failed one
 * drops the layer's whole pending chain, so the layer is its last
 * committed state, and bumps the layer's epoch, so that changes computed
 * from the dropped chain and already queued for a later commit are not
 * written (they fail with -ECANCELED). Then the submitter is woken.
 */
#ifndef BND_LAYER_CHANGE_H
#define BND_LAYER_CHANGE_H

#include <stdint.h>

#include "commit.h"
#include "registry.h"
#include "store.h"

enum bnd_change_kind {
	BND_CHANGE_NONE,   /* writes nothing: an answer that waits for what it saw pending */
	BND_CHANGE_INSERT, /* a new layer (created with creating set) */
	BND_CHANGE_UPDATE, /* config or state: PATCH, PUT /state, reset */
	BND_CHANGE_TRAIN,  /* a train step and its history entry */
	BND_CHANGE_DELETE,
	BND_CHANGE_CAL_PUT,    /* the layer's calibration after a posted batch */
	BND_CHANGE_CAL_DELETE, /* close the calibration */
	BND_CHANGE_CAL_COMMIT, /* calibrated running stats (next) and the calibration closed */
};

struct bnd_change {
	struct bnd_commit_job job;   /* first */
	enum bnd_change_kind kind;
	struct bnd_registry *registry;
	struct bnd_layer *layer;     /* a reference while queued */
	struct bnd_snapshot *next;   /* INSERT, UPDATE, TRAIN: what is written and published (a reference) */
	struct bnd_history_entry h;  /* TRAIN: its arrays stay the submitter's until woken */
	int64_t keep, keep_bytes;    /* TRAIN: --history-limit and --history-bytes */
	struct bn_calibration *cal;  /* CAL_PUT: what is written (the submitter's until woken) */
	int64_t layer_id;            /* CAL_*: the layer's row */
	int64_t at_ms;               /* CAL_PUT: when */
	uint64_t cal_seq;            /* CAL_*: the layer's cal_seq once queued */
	uint64_t epoch;              /* the layer's when computed */
	int rc;                      /* the outcome, once woken: 0 committed, or a negative errno */
	/* Called last, on the committer's thread; ch is the submitter's again. */
	void (*wake)(struct bnd_change *ch);
};

/*
 * Queue ch, filled but for the job, layer and epoch, as a change of l;
 * call with l's write_lock held (and l not creating, but for an INSERT).
 * UPDATE, TRAIN and CAL_COMMIT make ch->next l's pending snapshot, DELETE
 * marks l pending_delete; CAL_PUT makes a copy of ch->cal l's pending
 * calibration, CAL_DELETE and CAL_COMMIT make it closed. 0: ch->wake will be called. -EAGAIN (the commit queue is
 * full), -ESHUTDOWN or -ENOMEM: nothing queued, l unchanged, and ch->next
 * released.
 */
int bnd_change_submit(struct bnd_committer *c, struct bnd_registry *r, struct bnd_layer *l,
		struct bnd_change *ch);

/*
 * The changes of several layers committed as one job: all of them or
 * none (an import). Each member is an INSERT (its layer in the registry
 * with creating set) or an UPDATE, with kind, layer and next filled, and
 * its layer's write_lock held while it is submitted. Once committed or
 * failed, each member is settled as a single change would be, and then
 * lead (its rc set) is woken. A member computed from a dropped chain
 * cancels the whole group before anything is written.
 */
struct bnd_change_group {
	struct bnd_commit_job job;   /* first */
	struct bnd_change *member;
	size_t n;
	struct bnd_change *lead;     /* woken last; its layer and next are unused */
};

/*
 * Queue g. 0: g->lead->wake will be called. -EAGAIN, -ESHUTDOWN: nothing
 * queued, no layer changed, every member's next released.
 */
int bnd_change_group_submit(struct bnd_committer *c, struct bnd_registry *r, struct bnd_change_group *g);

/*
 * On a shared store (PostgreSQL), instead of queueing: write ch (filled as
 * for bnd_change_submit) at once on this thread, in the transaction
 * bnd_store_lock_layer began with l's row locked (or a new one for an
 * INSERT), commit it, settle l and call ch->wake, all before returning.
 * Call with l's write_lock held. Nothing becomes pending: each change is
 * its own transaction, computed from the locked row.
 */
void bnd_change_run(struct bnd_store *s, struct bnd_registry *r, struct bnd_layer *l, struct bnd_change *ch);

/* The same for a group (every member's write_lock held): one transaction, then g->lead is woken. */
void bnd_change_group_run(struct bnd_store *s, struct bnd_registry *r, struct bnd_change_group *g);

/* Whether l has anything queued (call with its write_lock held). */
bool bnd_layer_busy(const struct bnd_layer *l);

/*
 * A reference to the snapshot l's next change builds on: its pending one,
 * else its committed one. Call with l's write_lock held.
 */
struct bnd_snapshot *bnd_layer_base(struct bnd_layer *l);

/*
 * The calibration l's next change builds on, into *ret (the caller
 * finishes it): a copy of the pending one, else the committed one read
 * from the store. -ENOENT when there is none open, -EIO, -ENOMEM. Call
 * with l's write_lock held.
 */
int bnd_layer_calibration(struct bnd_store *s, struct bnd_layer *l, int64_t id, size_t num_features,
		struct bn_calibration *ret);

/* The store functions as a struct bnd_commit_backend for the committer. */
void bnd_store_commit_backend(struct bnd_store *s, struct bnd_commit_backend *ret);

#endif
