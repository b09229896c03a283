/*
 * layer_change.c: layer changes as commit jobs (layer_change.h).
 */
#include <errno.h>
#include <stddef.h>

#include "layer_change.h"

static struct bnd_change *change_of(struct bnd_commit_job *job)
{
	return (struct bnd_change *)((char *)job - offsetof(struct bnd_change, job));
}

static int change_write(struct bnd_commit_job *job, void *store)
{
	struct bnd_change *ch = change_of(job);

	/* Computed from a chain a failed commit dropped: not to be written. */
	if (ch->epoch != ch->layer->epoch)
		return -ECANCELED;
	switch (ch->kind) {
	case BND_CHANGE_INSERT:
		return bnd_store_insert(store, ch->layer->name, ch->next);
	case BND_CHANGE_UPDATE:
		return bnd_store_update(store, ch->next);
	case BND_CHANGE_TRAIN:
		return bnd_store_train(store, ch->next, &ch->h, ch->keep, ch->keep_bytes);
	case BND_CHANGE_DELETE:
		/* A layer's id never changes once its insert is committed. */
		return bnd_store_delete(store, ch->layer->snap->id);
	case BND_CHANGE_NONE:
		break;
	}
	return 0;
}

/* The change is durable: readers see it now. Under the write lock. */
static void committed(struct bnd_change *ch, bool *remove)
{
	struct bnd_layer *l = ch->layer;

	switch (ch->kind) {
	case BND_CHANGE_INSERT:
		atomic_store(&l->creating, false);
		break;
	case BND_CHANGE_UPDATE:
	case BND_CHANGE_TRAIN:
		atomic_fetch_add(&ch->next->refs, 1);
		bnd_layer_publish(l, ch->next);
		if (ch->kind == BND_CHANGE_TRAIN)
			atomic_fetch_add(&l->train_steps, 1);
		break;
	case BND_CHANGE_DELETE:
		atomic_store(&l->deleted, true);
		*remove = true;
		break;
	case BND_CHANGE_NONE:
		break;
	}
	if (ch->next && l->pending == ch->next) {
		bnd_snapshot_unref(l->pending);
		l->pending = NULL;
	}
}

/* The change failed: the first of its chain to hear it drops the chain. Under the write lock. */
static void failed(struct bnd_change *ch, bool *remove)
{
	struct bnd_layer *l = ch->layer;

	if (ch->epoch != l->epoch)
		return; /* dropped with an earlier failure */
	l->epoch++;
	bnd_snapshot_unref(l->pending);
	l->pending = NULL;
	l->pending_delete = false;
	/* A layer whose insert failed never existed. */
	if (atomic_load(&l->creating)) {
		atomic_store(&l->deleted, true);
		*remove = true;
	}
}

static void change_done(struct bnd_commit_job *job, int rc)
{
	struct bnd_change *ch = change_of(job);
	struct bnd_layer *l = ch->layer;
	bool remove = false;

	pthread_mutex_lock(&l->write_lock);
	if (rc == 0)
		committed(ch, &remove);
	else
		failed(ch, &remove);
	pthread_mutex_unlock(&l->write_lock);
	if (remove)
		bnd_registry_remove(ch->registry, l);
	bnd_snapshot_unref(ch->next);
	ch->next = NULL;
	ch->layer = NULL;
	bnd_layer_unref(l);
	ch->rc = rc;
	ch->wake(ch);
}

int bnd_change_submit(struct bnd_committer *c, struct bnd_registry *r, struct bnd_layer *l,
		struct bnd_change *ch)
{
	int rc;

	ch->job.write = change_write;
	ch->job.done = change_done;
	ch->registry = r;
	ch->layer = l;
	ch->epoch = l->epoch;
	ch->rc = 0;
	bnd_layer_ref(l);
	rc = bnd_committer_submit(c, &ch->job);
	if (rc < 0) {
		bnd_layer_unref(l);
		bnd_snapshot_unref(ch->next);
		ch->next = NULL;
		ch->layer = NULL;
		return rc;
	}
	if (ch->kind == BND_CHANGE_UPDATE || ch->kind == BND_CHANGE_TRAIN) {
		atomic_fetch_add(&ch->next->refs, 1);
		bnd_snapshot_unref(l->pending);
		l->pending = ch->next;
	} else if (ch->kind == BND_CHANGE_DELETE) {
		l->pending_delete = true;
	}
	return 0;
}

bool bnd_layer_busy(const struct bnd_layer *l)
{
	return l->pending || l->pending_delete || atomic_load(&l->creating);
}

struct bnd_snapshot *bnd_layer_base(struct bnd_layer *l)
{
	if (!l->pending)
		return bnd_layer_snapshot(l);
	atomic_fetch_add(&l->pending->refs, 1);
	return l->pending;
}

static int backend_begin(void *s)
{
	return bnd_store_begin(s);
}

static int backend_commit(void *s)
{
	return bnd_store_commit(s);
}

static void backend_rollback(void *s)
{
	bnd_store_rollback(s);
}

void bnd_store_backend(struct bnd_store *s, struct bnd_commit_backend *ret)
{
	*ret = (struct bnd_commit_backend){
		.store = s, .begin = backend_begin, .commit = backend_commit, .rollback = backend_rollback,
	};
}
