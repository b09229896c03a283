/*
 * store/sqlite_internal.h: what the SQLite backend's files share.
 */
#ifndef BND_STORE_INTERNAL_H
#define BND_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>

#include "store/ops.h"

enum store_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT,
	ST_UPDATE,
	ST_DELETE_HISTORY,
	ST_DELETE_LAYER,
	ST_HISTORY_ADD,
	ST_HISTORY_TRIM,
	ST_HISTORY_PAGE,
	ST_PING,
	ST_COUNT_
};

struct sqlite_store {
	struct bnd_store base;
	sqlite3 *db;            /* writes, in the transactions begin opens */
	pthread_mutex_t lock;   /* held from begin to commit or rollback */
	sqlite3_stmt *stmt[ST_COUNT_];
	sqlite3 *rdb;           /* reads requests make: history pages, /readyz, calibration */
	pthread_mutex_t rlock;
	sqlite3_stmt *rstmt[ST_COUNT_]; /* ST_HISTORY_PAGE and ST_PING only */
	atomic_bool corrupt;    /* a statement has met SQLITE_CORRUPT or SQLITE_NOTADB */
};

/*
 * Log SQLite's message for what failed and return -EIO. When the failure is
 * damage (SQLITE_CORRUPT, SQLITE_NOTADB) the store remembers it for good, and
 * bnd_store_ping reports it from then on.
 */
int store_fail(struct sqlite_store *s, const char *what);

/* The same for a failure on connection db (s->db or s->rdb). */
int store_fail_db(struct sqlite_store *s, sqlite3 *db, const char *what);

/* Step a statement that returns no rows, then reset it. 0 or -EIO. */
int store_exec(struct sqlite_store *s, enum store_stmt which, const char *what);

/* INSERT a layer (setting snap->id) or UPDATE its row, inside the open transaction. 0, -EIO, -ENOMEM. */
int store_insert_locked(struct sqlite_store *s, const char *name, struct bnd_snapshot *snap);
int store_update_locked(struct sqlite_store *s, const struct bnd_snapshot *snap);

/* Bind n float32 as a little-endian BLOB, or NULL when v is NULL. */
int store_bind_floats(sqlite3_stmt *st, int col, const float *v, size_t n);

/* Read a little-endian float32 BLOB of exactly n values into a new array. -EIO on a wrong length. */
int store_column_floats(sqlite3_stmt *st, int col, size_t n, float **ret);

/* The backend's operations beyond sqlite.c (store/ops.h). */
int sqlite_load(struct bnd_store *b,
		int (*add)(void *ud, const char *name, struct bnd_snapshot *snap), void *ud);
int sqlite_history(struct bnd_store *b, int64_t id, size_t num_features, int64_t after, size_t limit,
		int (*row)(void *ud, const struct bnd_history_entry *h), void *ud, bool *ret_more);
int sqlite_calibration_get(struct bnd_store *b, int64_t layer_id, size_t num_features,
		struct bn_calibration *ret, struct bnd_calibration_times *times);
int sqlite_calibration_put(struct bnd_store *b, int64_t layer_id, const struct bn_calibration *c,
		int64_t now_ms);
int sqlite_calibration_delete(struct bnd_store *b, int64_t layer_id);

#endif
