/*
 * store_internal.h: what store.c and store_history.c share.
 */
#ifndef BND_STORE_INTERNAL_H
#define BND_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>

#include "store.h"

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

struct bnd_store {
	sqlite3 *db;
	pthread_mutex_t lock;
	sqlite3_stmt *stmt[ST_COUNT_];
	/*
	 * A second connection for the reads requests make (history pages,
	 * /readyz): in WAL mode they go on while the committer's transaction
	 * writes and syncs, which would otherwise hold them behind its lock.
	 */
	sqlite3 *rdb;
	pthread_mutex_t rlock;
	sqlite3_stmt *rstmt[ST_COUNT_]; /* ST_HISTORY_PAGE and ST_PING only */
	atomic_bool corrupt;    /* a statement has met SQLITE_CORRUPT or SQLITE_NOTADB */
	double tx_started;      /* when the open transaction began, for bnd_metrics_commit */
	/*
	 * Test hooks, from the environment, for the integration tests only:
	 * while the file BATCHNORMD_TEST_FAIL_COMMIT names exists, commits fail
	 * (-EIO, rolled back) as on a full disk: as many as the number it
	 * holds (then it is removed), or all when it holds none; while the one
	 * BATCHNORMD_TEST_HOLD_COMMIT names exists, bnd_store_commit waits
	 * before it commits what the transaction wrote.
	 * NULL (unset): no hook, and no cost beyond a pointer test.
	 */
	const char *fail_path, *hold_path;
};

/*
 * Log SQLite's message for what failed and return -EIO. When the failure is
 * damage (SQLITE_CORRUPT, SQLITE_NOTADB) the store remembers it for good, and
 * bnd_store_ping reports it from then on.
 */
int store_fail(struct bnd_store *s, const char *what);

/* The same for a failure on connection db (s->db or s->rdb). */
int store_fail_db(struct bnd_store *s, sqlite3 *db, const char *what);

/* Step a statement that returns no rows, then reset it. 0 or -EIO. */
int store_exec(struct bnd_store *s, enum store_stmt which, const char *what);

/* Bind n float32 as a little-endian BLOB, or NULL when v is NULL. */
int store_bind_floats(sqlite3_stmt *st, int col, const float *v, size_t n);

/* Read a little-endian float32 BLOB of exactly n values into a new array. -EIO on a wrong length. */
int store_column_floats(sqlite3_stmt *st, int col, size_t n, float **ret);

#endif
