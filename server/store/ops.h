/*
 * store/ops.h: the table of operations every store backend provides, and
 * the struct bnd_store each backend's own struct begins with.
 *
 * The public functions of store.h and store_calibration.h dispatch through
 * this table (store/dispatch.c). The operations are transaction primitives
 * (begin, commit, rollback) plus changes that run inside one transaction
 * (insert, update, history_add, remove, calibration_put, calibration_delete),
 * so a request can write its own transaction, or a group committer can put
 * many changes in one. Reads (load, history, calibration_get, ping) run on
 * their own. Every operation returns 0 or a negative errno (-EIO: the store
 * failed or is unreachable, logged by the backend).
 *
 * A shared backend (shared: true, PostgreSQL) is written by several
 * processes, so the in-memory registry is only a cache: a change first locks
 * the layer's row (lock_layer, inside the transaction it commits) and reads
 * it, and a read confirms the cached version (layer_version). Transactions
 * belong to the calling thread: begin, the changes and commit of one
 * transaction run on the same thread.
 */
#ifndef BND_STORE_OPS_H
#define BND_STORE_OPS_H

#include "store.h"
#include "store_calibration.h"

struct bnd_store_ops {
	const char *name;
	bool shared;
	unsigned connections; /* a shared backend's pool: connections it opens at most */
	int (*open)(const char *target, bool sync_full, struct bnd_store **ret);
	void (*close)(struct bnd_store *s);
	int (*load)(struct bnd_store *s,
		int (*add)(void *ud, const char *name, struct bnd_snapshot *snap), void *ud);
	int (*begin)(struct bnd_store *s);
	int (*commit)(struct bnd_store *s);
	void (*rollback)(struct bnd_store *s);
	int (*insert)(struct bnd_store *s, const char *name, struct bnd_snapshot *snap);
	int (*update)(struct bnd_store *s, const struct bnd_snapshot *snap);
	int (*history_add)(struct bnd_store *s, int64_t id, const struct bnd_history_entry *h,
		int64_t keep, int64_t keep_bytes);
	int (*remove)(struct bnd_store *s, int64_t id);
	int (*history)(struct bnd_store *s, int64_t id, size_t num_features, int64_t after, size_t limit,
		int (*row)(void *ud, const struct bnd_history_entry *h), void *ud, bool *ret_more);
	int (*calibration_get)(struct bnd_store *s, int64_t layer_id, size_t num_features,
		struct bn_calibration *ret, struct bnd_calibration_times *times);
	int (*calibration_put)(struct bnd_store *s, int64_t layer_id, const struct bn_calibration *c,
		int64_t now_ms);
	int (*calibration_delete)(struct bnd_store *s, int64_t layer_id);
	int (*ping)(struct bnd_store *s);
	/* Shared backends only (NULL otherwise). */
	int (*lock_layer)(struct bnd_store *s, int64_t id, struct bnd_snapshot **ret);
	int (*layer_version)(struct bnd_store *s, const char *name, int64_t *ret_id, int64_t *ret_version);
	int (*layer_read)(struct bnd_store *s, const char *name, struct bnd_snapshot **ret);
	bool (*in_transaction)(struct bnd_store *s);
};

/* What every backend's store struct begins with. */
struct bnd_store {
	const struct bnd_store_ops *ops;
};

extern const struct bnd_store_ops bnd_store_sqlite_ops;
extern const struct bnd_store_ops bnd_store_postgresql_ops;

#endif
