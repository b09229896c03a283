/*
 * registry.c: the in-memory layers and their snapshots (registry.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

bool bnd_name_valid(const char *name)
{
	size_t n = 0;

	for (const char *p = name; *p; p++, n++) {
		char c = *p;
		bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

		if (n >= BND_NAME_MAX || (!alnum && (n == 0 || (c != '.' && c != '_' && c != '-'))))
			return false;
	}
	return n > 0;
}

int bnd_snapshot_create(const struct bn_config *cfg, struct bnd_snapshot **ret)
{
	struct bnd_snapshot *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	if (bn_state_init(&s->state, cfg) < 0) {
		free(s);
		return -ENOMEM;
	}
	atomic_init(&s->refs, 1);
	s->cfg = *cfg;
	s->version = 1;
	*ret = s;
	return 0;
}

int bnd_snapshot_copy(const struct bnd_snapshot *src, struct bnd_snapshot **ret)
{
	struct bnd_snapshot *s = malloc(sizeof(*s));

	if (!s)
		return -ENOMEM;
	*s = *src;
	if (bn_state_copy(&s->state, &src->state) < 0) {
		free(s);
		return -ENOMEM;
	}
	atomic_init(&s->refs, 1);
	*ret = s;
	return 0;
}

void bnd_snapshot_unref(struct bnd_snapshot *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	bn_state_finish(&s->state);
	free(s);
}

void bnd_snapshot_etag(const struct bnd_snapshot *s, char out[BND_ETAG_MAX])
{
	snprintf(out, BND_ETAG_MAX, "\"%" PRId64 "-%" PRId64 "\"", s->id, s->version);
}

int bnd_layer_create(const char *name, struct bnd_snapshot *snap, struct bnd_layer **ret)
{
	struct bnd_layer *l = calloc(1, sizeof(*l));

	if (!l) {
		bnd_snapshot_unref(snap);
		return -ENOMEM;
	}
	atomic_init(&l->refs, 1);
	atomic_init(&l->train_steps, 0);
	atomic_init(&l->creating, false);
	pthread_mutex_init(&l->write_lock, NULL);
	pthread_mutex_init(&l->snap_lock, NULL);
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->snap = snap;
	*ret = l;
	return 0;
}

void bnd_layer_ref(struct bnd_layer *l)
{
	atomic_fetch_add(&l->refs, 1);
}

void bnd_layer_unref(struct bnd_layer *l)
{
	if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	bnd_snapshot_unref(l->snap);
	bnd_snapshot_unref(l->pending);
	if (l->cal) {
		bn_calibration_finish(l->cal);
		free(l->cal);
	}
	pthread_mutex_destroy(&l->write_lock);
	pthread_mutex_destroy(&l->snap_lock);
	free(l);
}

struct bnd_snapshot *bnd_layer_snapshot(struct bnd_layer *l)
{
	struct bnd_snapshot *s;

	pthread_mutex_lock(&l->snap_lock);
	s = l->snap;
	atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&l->snap_lock);
	return s;
}

void bnd_layer_publish(struct bnd_layer *l, struct bnd_snapshot *snap)
{
	struct bnd_snapshot *old;

	pthread_mutex_lock(&l->snap_lock);
	old = l->snap;
	l->snap = snap;
	pthread_mutex_unlock(&l->snap_lock);
	bnd_snapshot_unref(old);
}

int bnd_registry_init(struct bnd_registry *r, size_t max_layers)
{
	*r = (struct bnd_registry){ .max = max_layers };
	pthread_rwlock_init(&r->lock, NULL);
	pthread_mutex_init(&r->create_lock, NULL);
	return 0;
}

void bnd_registry_finish(struct bnd_registry *r)
{
	for (size_t i = 0; i < r->count; i++)
		bnd_layer_unref(r->layers[i]);
	free(r->layers);
	pthread_rwlock_destroy(&r->lock);
	pthread_mutex_destroy(&r->create_lock);
	r->layers = NULL;
	r->count = r->cap = 0;
}

/* The index of name, or where it would go (*found false). Call with lock held. */
static size_t search(const struct bnd_registry *r, const char *name, bool *found)
{
	size_t lo = 0, hi = r->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(r->layers[mid]->name, name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static int lookup(struct bnd_registry *r, const char *name, bool creating, struct bnd_layer **ret)
{
	bool found;
	size_t i;

	pthread_rwlock_rdlock(&r->lock);
	i = search(r, name, &found);
	if (found && !creating && atomic_load(&r->layers[i]->creating))
		found = false;
	if (found) {
		bnd_layer_ref(r->layers[i]);
		*ret = r->layers[i];
	}
	pthread_rwlock_unlock(&r->lock);
	return found ? 0 : -ENOENT;
}

int bnd_registry_get(struct bnd_registry *r, const char *name, struct bnd_layer **ret)
{
	return lookup(r, name, false, ret);
}

int bnd_registry_find(struct bnd_registry *r, const char *name, struct bnd_layer **ret)
{
	return lookup(r, name, true, ret);
}

int bnd_registry_add(struct bnd_registry *r, struct bnd_layer *l)
{
	bool found;
	size_t i;
	int rc = 0;

	pthread_rwlock_wrlock(&r->lock);
	i = search(r, l->name, &found);
	if (found) {
		rc = -EEXIST;
		goto out;
	}
	if (r->count >= r->max) {
		rc = -EDQUOT;
		goto out;
	}
	if (r->count == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct bnd_layer **v = realloc(r->layers, cap * sizeof(*v));

		if (!v) {
			rc = -ENOMEM;
			goto out;
		}
		r->layers = v;
		r->cap = cap;
	}
	memmove(&r->layers[i + 1], &r->layers[i], (r->count - i) * sizeof(*r->layers));
	bnd_layer_ref(l);
	r->layers[i] = l;
	r->count++;
out:
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

int bnd_registry_reserve(struct bnd_registry *r, size_t n)
{
	int rc = 0;

	pthread_rwlock_wrlock(&r->lock);
	if (r->count + n > r->cap) {
		size_t cap = r->count + n;
		struct bnd_layer **v = realloc(r->layers, cap * sizeof(*v));

		if (v) {
			r->layers = v;
			r->cap = cap;
		} else {
			rc = -ENOMEM;
		}
	}
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

void bnd_registry_remove(struct bnd_registry *r, struct bnd_layer *l)
{
	bool found;
	size_t i;

	pthread_rwlock_wrlock(&r->lock);
	i = search(r, l->name, &found);
	if (found && r->layers[i] == l) {
		memmove(&r->layers[i], &r->layers[i + 1], (r->count - i - 1) * sizeof(*r->layers));
		r->count--;
	} else {
		found = false;
	}
	pthread_rwlock_unlock(&r->lock);
	if (found)
		bnd_layer_unref(l);
}

int bnd_registry_list(struct bnd_registry *r, struct bnd_layer ***ret, size_t *ret_count)
{
	struct bnd_layer **v;
	size_t n;

	pthread_rwlock_rdlock(&r->lock);
	v = malloc((r->count ? r->count : 1) * sizeof(*v));
	n = 0;
	for (size_t i = 0; v && i < r->count; i++) {
		if (atomic_load(&r->layers[i]->creating))
			continue;
		bnd_layer_ref(r->layers[i]);
		v[n++] = r->layers[i];
	}
	pthread_rwlock_unlock(&r->lock);
	if (!v)
		return -ENOMEM;
	*ret = v;
	*ret_count = n;
	return 0;
}

size_t bnd_registry_count(struct bnd_registry *r)
{
	size_t n;

	pthread_rwlock_rdlock(&r->lock);
	n = r->count;
	pthread_rwlock_unlock(&r->lock);
	return n;
}
