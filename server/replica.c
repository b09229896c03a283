/*
 * replica.c: keeping the registry in step with a shared store (replica.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "replica.h"
#include "store.h"

/* Mark l deleted and take it out of the registry. */
static void drop(struct bnd_daemon *d, struct bnd_layer *l, bool locked)
{
	if (!locked)
		pthread_mutex_lock(&l->write_lock);
	atomic_store(&l->deleted, true);
	if (!locked)
		pthread_mutex_unlock(&l->write_lock);
	bnd_registry_remove(&d->registry, l);
}

/* Publish fresh (taken) as l's snapshot when it is newer; write_lock held. */
static void refresh_locked(struct bnd_layer *l, struct bnd_snapshot *fresh)
{
	struct bnd_snapshot *cur = bnd_layer_snapshot(l);
	bool newer = fresh->id == cur->id && fresh->version > cur->version;

	bnd_snapshot_unref(cur);
	if (newer)
		bnd_layer_publish(l, fresh);
	else
		bnd_snapshot_unref(fresh);
}

/* Add a layer for snap (taken), or find the one a racing request added. */
static int adopt(struct bnd_daemon *d, const char *name, struct bnd_snapshot *snap, struct bnd_layer **ret)
{
	struct bnd_layer *l;
	int rc = bnd_layer_create(name, snap, &l);

	if (rc < 0)
		return rc;
	rc = bnd_registry_add(&d->registry, l);
	if (rc == -EEXIST) {
		bnd_layer_unref(l);
		return bnd_registry_get(&d->registry, name, ret);
	}
	if (rc < 0) {
		bnd_layer_unref(l);
		return rc;
	}
	*ret = l;
	return 0;
}

/* Make l (a reference, taken) current with the row snap (taken); *ret is the current layer. */
static int reconcile(struct bnd_daemon *d, const char *name, struct bnd_layer *l,
		struct bnd_snapshot *snap, struct bnd_layer **ret)
{
	if (l) {
		struct bnd_snapshot *cur = bnd_layer_snapshot(l);
		bool same_layer = cur->id == snap->id;

		bnd_snapshot_unref(cur);
		if (same_layer) {
			pthread_mutex_lock(&l->write_lock);
			refresh_locked(l, snap);
			pthread_mutex_unlock(&l->write_lock);
			*ret = l;
			return 0;
		}
		/* Deleted and created again elsewhere: a new id, so a new layer. */
		drop(d, l, false);
		bnd_layer_unref(l);
	}
	return adopt(d, name, snap, ret);
}

int bnd_replica_layer(struct bnd_daemon *d, const char *name, struct bnd_layer **ret)
{
	struct bnd_layer *l = NULL;
	struct bnd_snapshot *snap;
	int64_t id, version;
	int rc;

	if (!bnd_store_shared(d->store))
		return bnd_registry_get(&d->registry, name, ret);
	rc = bnd_store_layer_version(d->store, name, &id, &version);
	if (bnd_registry_get(&d->registry, name, &l) < 0)
		l = NULL;
	if (rc == 0 && l) {
		snap = bnd_layer_snapshot(l);
		rc = snap->id == id && snap->version >= version ? 1 : 0;
		bnd_snapshot_unref(snap);
		if (rc == 1) {
			*ret = l;
			return 0;
		}
	}
	if (rc == 0)
		rc = bnd_store_layer_read(d->store, name, &snap);
	if (rc == 0)
		return reconcile(d, name, l, snap, ret);
	if (rc == -ENOENT && l)
		drop(d, l, false);
	if (l)
		bnd_layer_unref(l);
	return rc;
}

/* The names bnd_replica_sync_all saw, in the store's (byte) order. */
struct seen {
	struct bnd_daemon *d;
	char **names;
	size_t count, cap;
};

static int sync_one(void *ud, const char *name, struct bnd_snapshot *snap)
{
	struct seen *s = ud;
	struct bnd_layer *l = NULL, *cur = NULL;
	int rc;

	if (s->count == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		char **v = realloc(s->names, cap * sizeof(*v));

		if (!v) {
			bnd_snapshot_unref(snap);
			return -ENOMEM;
		}
		s->names = v;
		s->cap = cap;
	}
	s->names[s->count] = strdup(name);
	if (!s->names[s->count]) {
		bnd_snapshot_unref(snap);
		return -ENOMEM;
	}
	s->count++;
	if (bnd_registry_get(&s->d->registry, name, &l) < 0)
		l = NULL;
	rc = reconcile(s->d, name, l, snap, &cur);
	if (rc == 0)
		bnd_layer_unref(cur);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int bnd_replica_sync_all(struct bnd_daemon *d)
{
	struct seen s = { .d = d };
	struct bnd_layer **all = NULL;
	size_t n = 0;
	int rc;

	if (!bnd_store_shared(d->store))
		return 0;
	rc = bnd_store_load(d->store, sync_one, &s);
	if (rc == 0)
		rc = bnd_registry_list(&d->registry, &all, &n);
	for (size_t i = 0; i < n; i++) {
		const char *key = all[i]->name;

		if (!bsearch(&key, s.names, s.count, sizeof(*s.names), by_name))
			drop(d, all[i], false);
		bnd_layer_unref(all[i]);
	}
	free(all);
	for (size_t i = 0; i < s.count; i++)
		free(s.names[i]);
	free(s.names);
	return rc;
}

int bnd_replica_lock(struct bnd_daemon *d, struct bnd_layer *l)
{
	struct bnd_snapshot *cur, *fresh = NULL;
	int64_t id;
	int rc;

	if (!bnd_store_shared(d->store))
		return 0;
	cur = bnd_layer_snapshot(l);
	id = cur->id;
	bnd_snapshot_unref(cur);
	rc = bnd_store_lock_layer(d->store, id, &fresh);
	if (rc == -ENOENT)
		drop(d, l, true);
	if (rc < 0)
		return rc;
	refresh_locked(l, fresh);
	return 0;
}
