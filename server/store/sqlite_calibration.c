/*
 * store/sqlite_calibration.c: the calibration table on SQLite (store_calibration.h).
 *
 * Arrays are little-endian float64 BLOBs. These statements run rarely next
 * to train steps, so each is prepared when used: the writes on the store's
 * connection inside the committer's transaction, the read on the read
 * connection under its lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_calibration.h"
#include "store/sqlite_internal.h"

/* Prepare sql on connection db (s->db or s->rdb); 0 or -EIO (logged). */
static int prepare(struct sqlite_store *s, sqlite3 *db, const char *sql, sqlite3_stmt **ret, const char *what)
{
	if (sqlite3_prepare_v2(db, sql, -1, ret, NULL) != SQLITE_OK)
		return store_fail_db(s, db, what);
	return 0;
}

static int bind_doubles(sqlite3_stmt *st, int col, const double *v, size_t n)
{
	unsigned char *blob = malloc(n * 8);

	if (!blob)
		return SQLITE_NOMEM;
	for (size_t i = 0; i < n; i++) {
		uint64_t u;

		memcpy(&u, &v[i], 8);
		for (int b = 0; b < 8; b++)
			blob[i * 8 + (size_t)b] = (unsigned char)(u >> (8 * b));
	}
	return sqlite3_bind_blob64(st, col, blob, n * 8, free);
}

static int column_doubles(sqlite3_stmt *st, int col, size_t n, double *out)
{
	const unsigned char *blob = sqlite3_column_blob(st, col);

	if (!blob || (size_t)sqlite3_column_bytes(st, col) != n * 8)
		return -EIO;
	for (size_t i = 0; i < n; i++) {
		uint64_t u = 0;

		for (int b = 0; b < 8; b++)
			u |= (uint64_t)blob[i * 8 + (size_t)b] << (8 * b);
		memcpy(&out[i], &u, 8);
	}
	return 0;
}

static int read_row(sqlite3_stmt *st, size_t n, struct bn_calibration *c,
		struct bnd_calibration_times *times)
{
	int rc = bn_calibration_init(c, n);

	if (rc < 0)
		return rc;
	c->count = sqlite3_column_int64(st, 0);
	c->batches = sqlite3_column_int64(st, 1);
	rc = column_doubles(st, 2, n, c->mean);
	rc = rc ? rc : column_doubles(st, 3, n, c->m2);
	rc = rc ? rc : column_doubles(st, 4, n, c->batch_mean_sum);
	rc = rc ? rc : column_doubles(st, 5, n, c->batch_var_sum);
	if (rc == 0 && (c->count < 0 || c->count > BN_MAX_COUNT || c->batches < 0))
		rc = -EIO;
	if (rc < 0) {
		bn_calibration_finish(c);
		return rc;
	}
	if (times)
		*times = (struct bnd_calibration_times){ sqlite3_column_int64(st, 6), sqlite3_column_int64(st, 7) };
	return 0;
}

int sqlite_calibration_get(struct bnd_store *b, int64_t layer_id, size_t num_features,
		struct bn_calibration *ret, struct bnd_calibration_times *times)
{
	struct sqlite_store *s = (struct sqlite_store *)b;
	sqlite3_stmt *st = NULL;
	struct bn_calibration c;
	int rc;

	pthread_mutex_lock(&s->rlock);
	rc = prepare(s, s->rdb, "SELECT count, batches, mean, m2, batch_mean_sum, batch_var_sum, created_at, "
			"updated_at FROM calibration WHERE layer_id = ?1", &st, "reading a calibration");
	if (rc == 0) {
		sqlite3_bind_int64(st, 1, layer_id);
		switch (sqlite3_step(st)) {
		case SQLITE_ROW:
			rc = read_row(st, num_features, &c, times);
			if (rc == -EIO)
				rc = store_fail_db(s, s->rdb, "reading a calibration: a row of the wrong size");
			break;
		case SQLITE_DONE:
			rc = -ENOENT;
			break;
		default:
			rc = store_fail_db(s, s->rdb, "reading a calibration");
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->rlock);
	if (rc == 0)
		*ret = c;
	return rc;
}

int sqlite_calibration_put(struct bnd_store *base, int64_t layer_id, const struct bn_calibration *c,
		int64_t now_ms)
{
	struct sqlite_store *s = (struct sqlite_store *)base;
	size_t n = c->num_features;
	sqlite3_stmt *st = NULL;
	int rc, b = 0;

	rc = prepare(s, s->db, "INSERT INTO calibration (layer_id, count, batches, mean, m2, batch_mean_sum, "
			"batch_var_sum, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) "
			"ON CONFLICT (layer_id) DO UPDATE SET count = ?2, batches = ?3, mean = ?4, m2 = ?5, "
			"batch_mean_sum = ?6, batch_var_sum = ?7, updated_at = ?8", &st, "writing a calibration");
	if (rc == 0) {
		b |= sqlite3_bind_int64(st, 1, layer_id);
		b |= sqlite3_bind_int64(st, 2, c->count);
		b |= sqlite3_bind_int64(st, 3, c->batches);
		b |= bind_doubles(st, 4, c->mean, n);
		b |= bind_doubles(st, 5, c->m2, n);
		b |= bind_doubles(st, 6, c->batch_mean_sum, n);
		b |= bind_doubles(st, 7, c->batch_var_sum, n);
		b |= sqlite3_bind_int64(st, 8, now_ms);
		if (b != SQLITE_OK)
			rc = -ENOMEM;
		else if (sqlite3_step(st) != SQLITE_DONE)
			rc = store_fail(s, "writing a calibration");
	}
	sqlite3_finalize(st);
	return rc;
}

/* Delete the layer's calibration, if it has one, inside the open transaction. */
int sqlite_calibration_delete(struct bnd_store *b, int64_t layer_id)
{
	struct sqlite_store *s = (struct sqlite_store *)b;
	sqlite3_stmt *st = NULL;
	int rc = prepare(s, s->db, "DELETE FROM calibration WHERE layer_id = ?1", &st, "deleting a calibration");

	if (rc == 0) {
		sqlite3_bind_int64(st, 1, layer_id);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = store_fail(s, "deleting a calibration");
	}
	sqlite3_finalize(st);
	return rc;
}
