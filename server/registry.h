/*
 * registry.h: every layer's state, cached in memory.
 *
 * A layer's current state is an immutable, reference-counted snapshot.
 * Readers (GET, eval) take a reference to the committed snapshot and work
 * without holding any lock. A writer (train, PATCH, PUT /state, reset,
 * DELETE) holds the layer's write_lock only while it computes: it builds
 * a new snapshot from a copy of the pending one (the newest change queued
 * for commit) or, when none is pending, of the committed one, makes it the
 * pending one and queues it for the committer (layer_change.h), which
 * publishes it as the committed snapshot once it is durable. So eval reads
 * no database, train steps on one layer apply in order and never lose an
 * update, and many steps share one commit.
 */
#ifndef BND_REGISTRY_H
#define BND_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn/batchnorm.h"
#include "bn/stats.h"

#define BND_NAME_MAX 128
#define BND_ETAG_MAX 48

struct bnd_snapshot {
	atomic_int refs;
	struct bn_config cfg;
	struct bn_state state;
	int64_t id;         /* the store's row id: never reused, so a re-created layer gets a new ETag */
	int64_t version;    /* bumped by every change of config or state */
	int64_t step;       /* train steps since creation; never goes back */
	int64_t created_ms; /* Unix time in milliseconds */
	int64_t updated_ms;
};

struct bnd_layer {
	atomic_int refs;
	pthread_mutex_t write_lock; /* held by whoever changes the layer */
	pthread_mutex_t snap_lock;  /* guards the snap pointer only */
	struct bnd_snapshot *snap;
	atomic_bool deleted;        /* set under write_lock; read anywhere */
	atomic_bool creating;       /* its insert is not committed yet: hidden from bnd_registry_get */
	/* Under write_lock: */
	struct bnd_snapshot *pending; /* the newest change queued, not committed yet; NULL: none */
	bool pending_delete;        /* a DELETE is queued */
	uint64_t epoch;             /* bumped when a failed commit drops the pending chain */
	/*
	 * The open calibration as the queued calibration changes leave it
	 * (layer_change.h): cal_pending set while one is queued, and then cal
	 * is what it makes (NULL: it closes the calibration); cal_seq names
	 * the newest, so its commit knows it is still the pending one.
	 */
	bool cal_pending;
	struct bn_calibration *cal;
	uint64_t cal_seq;
	atomic_uint_fast64_t train_steps; /* since the process started, for /metrics */
	char name[BND_NAME_MAX + 1];
};

struct bnd_registry {
	pthread_rwlock_t lock;
	pthread_mutex_t create_lock; /* serializes PUT and DELETE of layers */
	struct bnd_layer **layers;   /* sorted by name, byte order */
	size_t count, cap, max;
};

/* A name API.md accepts: 1..128 of [A-Za-z0-9._-], starting with a letter or digit. */
bool bnd_name_valid(const char *name);

/* A new snapshot with refs 1 and cfg's fresh state. -ENOMEM. */
int bnd_snapshot_create(const struct bn_config *cfg, struct bnd_snapshot **ret);

/* A deep copy of src with refs 1, to be changed and published. -ENOMEM. */
int bnd_snapshot_copy(const struct bnd_snapshot *src, struct bnd_snapshot **ret);

void bnd_snapshot_unref(struct bnd_snapshot *s);

/* Write s's ETag, a quoted string, into out. */
void bnd_snapshot_etag(const struct bnd_snapshot *s, char out[BND_ETAG_MAX]);

/* A new layer holding snap (ownership taken), refs 1. -ENOMEM (snap freed). */
int bnd_layer_create(const char *name, struct bnd_snapshot *snap, struct bnd_layer **ret);

void bnd_layer_ref(struct bnd_layer *l);
void bnd_layer_unref(struct bnd_layer *l);

/* A reference to l's current snapshot; the caller unrefs it. */
struct bnd_snapshot *bnd_layer_snapshot(struct bnd_layer *l);

/* Make snap (ownership taken) l's current snapshot. Call with write_lock held. */
void bnd_layer_publish(struct bnd_layer *l, struct bnd_snapshot *snap);

int bnd_registry_init(struct bnd_registry *r, size_t max_layers);
void bnd_registry_finish(struct bnd_registry *r);

/* A reference to the layer called name in *ret, or -ENOENT (also while it is being created). */
int bnd_registry_get(struct bnd_registry *r, const char *name, struct bnd_layer **ret);

/* The same, finding a layer whose creation is not committed yet too. */
int bnd_registry_find(struct bnd_registry *r, const char *name, struct bnd_layer **ret);

/* Add l (the registry takes its own reference). -EEXIST, -EDQUOT at the cap, -ENOMEM. */
int bnd_registry_add(struct bnd_registry *r, struct bnd_layer *l);

/* Make room for n more layers, so that the next n adds fail only with -EEXIST or -EDQUOT. -ENOMEM. */
int bnd_registry_reserve(struct bnd_registry *r, size_t n);

/* Remove l and drop the registry's reference. */
void bnd_registry_remove(struct bnd_registry *r, struct bnd_layer *l);

/* References to every layer (but those being created), sorted by name, in a new array. The caller
 * unrefs each and frees the array. -ENOMEM. */
int bnd_registry_list(struct bnd_registry *r, struct bnd_layer ***ret, size_t *ret_count);

size_t bnd_registry_count(struct bnd_registry *r);

#endif
