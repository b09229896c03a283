/*
 * store.h: batchnormd's SQLite database, the only place with SQL.
 *
 * One connection, in WAL mode, guarded by a mutex, for every write:
 * commits serialize, which they would in SQLite anyway, and are grouped
 * by the committer (commit.h). The reads requests make (history pages,
 * /readyz) go through a second connection of their own, so a commit that
 * is syncing never holds them up. Every statement is prepared once at open.
 * Schema changes are the embedded migrations, applied at open in one
 * transaction and tracked by PRAGMA user_version. Every failure is logged
 * here with SQLite's message and returned as -EIO (or -ENOMEM).
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

/*
 * Open (creating if needed) the database at path, apply pending migrations
 * and prepare statements. sync_full: synchronous=FULL, else NORMAL.
 * -EPROTO when the database's schema is newer than this binary knows, -EIO.
 */
int bnd_store_open(const char *path, bool sync_full, struct bnd_store **ret);

/* Close the database. Accepts NULL. */
void bnd_store_close(struct bnd_store *s);

/* Call add(ud, name, snap) for every stored layer; add takes the snapshot. */
int bnd_store_load(struct bnd_store *s,
		int (*add)(void *ud, const char *name, struct bnd_snapshot *snap), void *ud);

/*
 * Changes are written in transactions: bnd_store_begin(), any number of
 * the writes below, then bnd_store_commit() or bnd_store_rollback(). The
 * store is held from begin to commit or rollback (other callers, history
 * reads and /readyz, wait), so one thread at a time writes: the committer
 * (commit.h), which groups every change queued meanwhile into one
 * transaction and one sync.
 */

/* Begin a transaction (BEGIN IMMEDIATE) and hold the store. -EIO: nothing is held. */
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
