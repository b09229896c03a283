/*
 * layer_change.c: layer changes as commit jobs (layer_change.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "layer_change.h"
#include "store_calibration.h"

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
	case BND_CHANGE_CAL_PUT:
		return bnd_store_calibration_put(store, ch->layer_id, ch->cal, ch->at_ms);
	case BND_CHANGE_CAL_DELETE:
		return bnd_store_calibration_delete(store, ch->layer_id);
	case BND_CHANGE_CAL_COMMIT:
		return bnd_store_calibration_commit(store, ch->next);
	case BND_CHANGE_NONE:
		break;
	}
	return 0;
}

static void cal_free(struct bn_calibration *c)
{
	if (c) {
		bn_calibration_finish(c);
		free(c);
	}
}

/* A new copy of c; NULL when out of memory. */
static struct bn_calibration *cal_copy(const struct bn_calibration *c)
{
	struct bn_calibration *d = malloc(sizeof(*d));
	size_t n = c->num_features * sizeof(double);

	if (!d || bn_calibration_init(d, c->num_features) < 0) {
		free(d);
		return NULL;
	}
	d->count = c->count;
	d->batches = c->batches;
	memcpy(d->mean, c->mean, n);
	memcpy(d->m2, c->m2, n);
	memcpy(d->batch_mean_sum, c->batch_mean_sum, n);
	memcpy(d->batch_var_sum, c->batch_var_sum, n);
	return d;
}

static bool is_cal(enum bnd_change_kind k)
{
	return k == BND_CHANGE_CAL_PUT || k == BND_CHANGE_CAL_DELETE || k == BND_CHANGE_CAL_COMMIT;
}

/* Drop l's pending calibration: what the store has is the newest again. */
static void cal_clear(struct bnd_layer *l)
{
	cal_free(l->cal);
	l->cal = NULL;
	l->cal_pending = false;
}

int bnd_layer_calibration(struct bnd_store *s, struct bnd_layer *l, int64_t id, size_t num_features,
		struct bn_calibration *ret)
{
	struct bn_calibration *c;

	if (!l->cal_pending)
		return bnd_store_calibration_get(s, id, num_features, ret, NULL);
	if (!l->cal)
		return -ENOENT;
	c = cal_copy(l->cal);
	if (!c)
		return -ENOMEM;
	*ret = *c;
	free(c);
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
	case BND_CHANGE_CAL_COMMIT:
		atomic_fetch_add(&ch->next->refs, 1);
		bnd_layer_publish(l, ch->next);
		if (ch->kind == BND_CHANGE_TRAIN)
			atomic_fetch_add(&l->train_steps, 1);
		break;
	case BND_CHANGE_DELETE:
		atomic_store(&l->deleted, true);
		*remove = true;
		break;
	case BND_CHANGE_CAL_PUT:
	case BND_CHANGE_CAL_DELETE:
	case BND_CHANGE_NONE:
		break;
	}
	if (is_cal(ch->kind) && l->cal_pending && l->cal_seq == ch->cal_seq)
		cal_clear(l);
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
	cal_clear(l);
	/* A layer whose insert failed never existed. */
	if (atomic_load(&l->creating)) {
		atomic_store(&l->deleted, true);
		*remove = true;
	}
}

/*
 * What the commit's outcome does to ch's layer; ch's references are
 * released. locked: the caller holds the layer's write_lock (a change run
 * at once on a shared store), else it is taken here (the committer).
 */
static void settle(struct bnd_change *ch, int rc, bool locked)
{
	struct bnd_layer *l = ch->layer;
	bool remove = false;

	if (!locked)
		pthread_mutex_lock(&l->write_lock);
	if (rc == 0)
		committed(ch, &remove);
	else
		failed(ch, &remove);
	if (!locked)
		pthread_mutex_unlock(&l->write_lock);
	if (remove)
		bnd_registry_remove(ch->registry, l);
	bnd_snapshot_unref(ch->next);
	ch->next = NULL;
	ch->layer = NULL;
	bnd_layer_unref(l);
}

static void change_done(struct bnd_commit_job *job, int rc)
{
	struct bnd_change *ch = change_of(job);

	settle(ch, rc, false);
	ch->rc = rc;
	ch->wake(ch);
}

int bnd_change_submit(struct bnd_committer *c, struct bnd_registry *r, struct bnd_layer *l,
		struct bnd_change *ch)
{
	struct bn_calibration *cal = NULL;
	int rc;

	ch->job.write = change_write;
	ch->job.done = change_done;
	ch->registry = r;
	ch->layer = l;
	ch->epoch = l->epoch;
	ch->rc = 0;
	if (ch->kind == BND_CHANGE_CAL_PUT && !(cal = cal_copy(ch->cal))) {
		bnd_snapshot_unref(ch->next);
		ch->next = NULL;
		ch->layer = NULL;
		return -ENOMEM;
	}
	bnd_layer_ref(l);
	rc = bnd_committer_submit(c, &ch->job);
	if (rc < 0) {
		cal_free(cal);
		bnd_layer_unref(l);
		bnd_snapshot_unref(ch->next);
		ch->next = NULL;
		ch->layer = NULL;
		return rc;
	}
	if (is_cal(ch->kind)) {
		cal_free(l->cal);
		l->cal = cal;
		l->cal_pending = true;
		ch->cal_seq = ++l->cal_seq;
	}
	if (ch->kind == BND_CHANGE_UPDATE || ch->kind == BND_CHANGE_TRAIN || ch->kind == BND_CHANGE_CAL_COMMIT) {
		atomic_fetch_add(&ch->next->refs, 1);
		bnd_snapshot_unref(l->pending);
		l->pending = ch->next;
	} else if (ch->kind == BND_CHANGE_DELETE) {
		l->pending_delete = true;
	}
	return 0;
}

static struct bnd_change_group *group_of(struct bnd_commit_job *job)
{
	return (struct bnd_change_group *)((char *)job - offsetof(struct bnd_change_group, job));
}

static int group_write(struct bnd_commit_job *job, void *store)
{
	struct bnd_change_group *g = group_of(job);
	int rc = 0;

	/* All or none: a member computed from a dropped chain cancels the group before any write. */
	for (size_t i = 0; i < g->n; i++)
		if (g->member[i].epoch != g->member[i].layer->epoch)
			return -ECANCELED;
	for (size_t i = 0; i < g->n && rc == 0; i++)
		rc = change_write(&g->member[i].job, store);
	return rc == -ECANCELED ? -EIO : rc;
}

static void group_done(struct bnd_commit_job *job, int rc)
{
	struct bnd_change_group *g = group_of(job);

	for (size_t i = 0; i < g->n; i++)
		settle(&g->member[i], rc, false);
	g->lead->rc = rc;
	g->lead->wake(g->lead);
}

/*
 * Write job in this thread's transaction (the one bnd_store_lock_layer
 * began with the row locked, or a new one) and commit it. 0 or the failure.
 */
static int run_now(struct bnd_store *s, struct bnd_commit_job *job)
{
	int rc = bnd_store_begin(s);

	if (rc < 0)
		return rc;
	rc = job->write(job, s);
	if (rc == 0)
		return bnd_store_commit(s);
	bnd_store_rollback(s);
	return rc;
}

void bnd_change_run(struct bnd_store *s, struct bnd_registry *r, struct bnd_layer *l, struct bnd_change *ch)
{
	int rc;

	ch->job.write = change_write;
	ch->registry = r;
	ch->layer = l;
	ch->epoch = l->epoch;
	bnd_layer_ref(l);
	rc = run_now(s, &ch->job);
	settle(ch, rc, true);
	ch->rc = rc;
	ch->wake(ch);
}

void bnd_change_group_run(struct bnd_store *s, struct bnd_registry *r, struct bnd_change_group *g)
{
	int rc;

	g->job.write = group_write;
	for (size_t i = 0; i < g->n; i++) {
		g->member[i].registry = r;
		g->member[i].epoch = g->member[i].layer->epoch;
		bnd_layer_ref(g->member[i].layer);
	}
	rc = run_now(s, &g->job);
	for (size_t i = 0; i < g->n; i++)
		settle(&g->member[i], rc, true);
	g->lead->rc = rc;
	g->lead->wake(g->lead);
}

int bnd_change_group_submit(struct bnd_committer *c, struct bnd_registry *r, struct bnd_change_group *g)
{
	int rc;

	g->job.write = group_write;
	g->job.done = group_done;
	for (size_t i = 0; i < g->n; i++) {
		struct bnd_change *m = &g->member[i];

		m->registry = r;
		m->epoch = m->layer->epoch;
		m->rc = 0;
		bnd_layer_ref(m->layer);
	}
	rc = bnd_committer_submit(c, &g->job);
	for (size_t i = 0; i < g->n; i++) {
		struct bnd_change *m = &g->member[i];

		if (rc < 0) {
			bnd_layer_unref(m->layer);
			bnd_snapshot_unref(m->next);
			m->next = NULL;
		} else if (m->kind == BND_CHANGE_UPDATE) {
			atomic_fetch_add(&m->next->refs, 1);
			bnd_snapshot_unref(m->layer->pending);
			m->layer->pending = m->next;
		}
	}
	return rc;
}

bool bnd_layer_busy(const struct bnd_layer *l)
{
	return l->pending || l->pending_delete || l->cal_pending || atomic_load(&l->creating);
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

void bnd_store_commit_backend(struct bnd_store *s, struct bnd_commit_backend *ret)
{
	*ret = (struct bnd_commit_backend){
		.store = s, .begin = backend_begin, .commit = backend_commit, .rollback = backend_rollback,
	};
}
