/*
 * store.h: batchnormd's store, the only way to its database.
 *
 * Two backends sit behind these functions (store/ops.h): SQLite
 * (store/sqlite*.c), one process owning a file, whose in-memory registry is
 * the truth and whose changes the committer groups (commit.h); and
 * PostgreSQL (store/postgresql*.c), shared by several daemons, where the
 * registry is a cache each request confirms and each change is its own
 * transaction. Schema changes are the embedded migrations of the backend's
 * dialect, applied at open in one transaction. Every failure is logged by
 * the backend and returned as -EIO (or -ENOMEM); -EIO answers 503
 * store_unavailable.
 */
#ifndef BND_STORE_H
#define BND_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

struct bnd_store;

/* One train step as the history keeps it. Running values NULL when not tracked. */
struct bnd_history_entry {
	int64_t step, at_ms, count, num_batches_tracked;
	size_t num_features;
	const float *batch_mean, *batch_var;
	const float *running_mean, *running_var;
};

struct bnd_store_ops;

/*
 * Split a store URL: sqlite:PATH, or postgresql://... / postgres://... (a
 * libpq connection URI, passed whole). -EINVAL for anything else.
 */
int bnd_store_parse_url(const char *url, const struct bnd_store_ops **ret_ops, const char **ret_target);

struct bnd_options;

/*
 * Settle o's store: --store when given (then db_path is its SQLite path,
 * or NULL on PostgreSQL), else sqlite:db_path; and put a
 * --store-password-file's password where libpq reads it. -EINVAL (said
 * on stderr) for a bad URL or an unreadable password file.
 */
int bnd_store_options(struct bnd_options *o);

/*
 * Open the store at url (bnd_store_parse_url), creating the database's
 * tables if needed, and apply pending migrations. sync_full: SQLite
 * synchronous=FULL, else NORMAL; PostgreSQL synchronous_commit on, else
 * off. -EINVAL for a bad URL, -EPROTO when the database's schema is newer
 * than this binary knows, -EIO.
 */
int bnd_store_open(const char *url, bool sync_full, struct bnd_store **ret);

/* True when other processes write the same store: the registry is then only a cache. */
bool bnd_store_shared(const struct bnd_store *s);

/* On a shared store, how many connections it opens at most (its pool); else 0. */
unsigned bnd_store_connections(const struct bnd_store *s);

/* "sqlite" or "postgresql". */
const char *bnd_store_backend(const struct bnd_store *s);

/*
 * On a shared store: begin this thread's transaction and lock layer id's
 * row in it (SELECT ... FOR UPDATE) until the next write commits or
 * bnd_store_unlock_layer; *ret is then the row as stored, a new snapshot
 * (refs 1). -ENOENT when the row is gone (nothing held), -EIO. On a store
 * that is not shared: 0 and *ret NULL.
 */
int bnd_store_lock_layer(struct bnd_store *s, int64_t id, struct bnd_snapshot **ret);

/* Roll back what bnd_store_lock_layer began, if no write committed it. */
void bnd_store_unlock_layer(struct bnd_store *s);

/* Shared stores: the id and version of layer name (one indexed query). -ENOENT, -EIO, -ENOSYS. */
int bnd_store_layer_version(struct bnd_store *s, const char *name, int64_t *ret_id, int64_t *ret_version);

/* Shared stores: layer name as stored, a new snapshot (refs 1). -ENOENT, -EIO, -ENOSYS. */
int bnd_store_layer_read(struct bnd_store *s, const char *name, struct bnd_snapshot **ret);

/* Close the database. Accepts NULL. */
void bnd_store_close(struct bnd_store *s);

/* Call add(ud, name, snap) for every stored layer; add takes the snapshot. */
int bnd_store_load(struct bnd_store *s,
		int (*add)(void *ud, const char *name, struct bnd_snapshot *snap), void *ud);

/*
 * Changes are written in transactions: bnd_store_begin(), any number of
 * the writes below, then bnd_store_commit() or bnd_store_rollback(), all
 * on one thread. On SQLite the store is held from begin to commit or
 * rollback, so one thread at a time writes: the committer (commit.h),
 * which groups every change queued meanwhile into one transaction and one
 * sync. On PostgreSQL a transaction belongs to the calling thread (its
 * connection): each change's own, opened by bnd_store_lock_layer or begin.
 *
 * Test hooks, for both backends: while the file named by
 * BATCHNORMD_TEST_HOLD_COMMIT exists, a commit waits before committing;
 * while BATCHNORMD_TEST_FAIL_COMMIT's exists, commits fail (rolled back)
 * — as many as the number it holds, then it is removed, or all of them.
 */

/* Begin a transaction and hold the store (a no-op inside one already open on PostgreSQL). -EIO: nothing is held. */
int bnd_store_begin(struct bnd_store *s);

/*
 * Commit the open transaction and release the store. 0: durable as
 * --sync says. -EIO: it was rolled back, nothing it wrote is stored.
 */
int bnd_store_commit(struct bnd_store *s);

/* Roll the open transaction back and release the store. */
void bnd_store_rollback(struct bnd_store *s);

/* In the open transaction: insert a new layer; sets snap->id on success. -EIO, -ENOMEM. */
int bnd_store_insert(struct bnd_store *s, const char *name, struct bnd_snapshot *snap);

/* In the open transaction: write snap's config, state, step, version and updated time. -EIO. */
int bnd_store_update(struct bnd_store *s, const struct bnd_snapshot *snap);

/*
 * The bytes one history entry of h's width counts as against
 * --history-bytes: its arrays (4 bytes per value: 8 per channel, 16 when
 * it has running values) plus BND_HISTORY_ENTRY_OVERHEAD for the rest of
 * the row. A little more than the row takes in the database.
 */
#define BND_HISTORY_ENTRY_OVERHEAD 64
int64_t bnd_store_history_entry_bytes(const struct bnd_history_entry *h);

/*
 * In the open transaction: update the layer to snap, append the history
 * entry h and drop the oldest entries beyond the newest keep, and beyond
 * the newest that fit in keep_bytes (the newest one is always kept). -EIO.
 */
int bnd_store_train(struct bnd_store *s, const struct bnd_snapshot *snap,
		const struct bnd_history_entry *h, int64_t keep, int64_t keep_bytes);

/* In the open transaction: delete a layer and its history. -EIO. */
int bnd_store_delete(struct bnd_store *s, int64_t id);

/*
 * Call row(ud, h) for up to limit history entries of layer id with step >
 * after, oldest first; *ret_more says whether more follow. row returns 0
 * to go on, 1 to end the page before h (then *ret_more is true), or a
 * negative errno, which is returned. -EIO.
 */
int bnd_store_history(struct bnd_store *s, int64_t id, size_t num_features, int64_t after, size_t limit,
		int (*row)(void *ud, const struct bnd_history_entry *h), void *ud, bool *ret_more);

/*
 * A real query, for /readyz. 0, -EIO, or -EUCLEAN once any statement has
 * found the database damaged (SQLITE_CORRUPT or SQLITE_NOTADB), for good.
 */
int bnd_store_ping(struct bnd_store *s);

/* The wall-clock time now, in Unix milliseconds. */
int64_t bnd_now_ms(void);

#endif
