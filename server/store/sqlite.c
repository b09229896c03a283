/*
 * store/sqlite.c: the SQLite backend (store/ops.h): opening the database,
 * its migrations, transactions and the layers table. Reads are in
 * sqlite_history.c, the calibration table in sqlite_calibration.c.
 *
 * One connection, in WAL mode, guarded by a mutex that a transaction holds
 * from begin to commit or rollback, for every write: commits serialize,
 * which they would in SQLite anyway, and are grouped by the committer
 * (commit.h). The reads requests make (history pages, /readyz, the
 * calibration) go through a second connection of their own, so a commit
 * that is syncing never holds them up. Every statement is prepared once at
 * open. Migrations are tracked by PRAGMA user_version.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "embed.h"
#include "store/sqlite_internal.h"

#define LAYER_COLS "num_features, eps, momentum, affine, track_running_stats, weight, bias, " \
	"running_mean, running_var, num_batches_tracked, step, version, created_at, updated_at"

static const char *const stmt_sql[ST_COUNT_] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_INSERT] = "INSERT INTO layers (name, " LAYER_COLS ") "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
	[ST_UPDATE] = "UPDATE layers SET num_features = ?2, eps = ?3, momentum = ?4, affine = ?5, "
		"track_running_stats = ?6, weight = ?7, bias = ?8, running_mean = ?9, running_var = ?10, "
		"num_batches_tracked = ?11, step = ?12, version = ?13, created_at = ?14, updated_at = ?15 "
		"WHERE id = ?1",
	[ST_DELETE_HISTORY] = "DELETE FROM history WHERE layer_id = ?1",
	[ST_DELETE_LAYER] = "DELETE FROM layers WHERE id = ?1",
	[ST_HISTORY_ADD] = "INSERT INTO history (layer_id, step, at, count, num_batches_tracked, "
		"batch_mean, batch_var, running_mean, running_var) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[ST_HISTORY_TRIM] = "DELETE FROM history WHERE layer_id = ?1 AND step <= ?2",
	[ST_HISTORY_PAGE] = "SELECT step, at, count, num_batches_tracked, batch_mean, batch_var, "
		"running_mean, running_var FROM history WHERE layer_id = ?1 AND step > ?2 "
		"ORDER BY step LIMIT ?3",
	[ST_PING] = "SELECT count(*) FROM layers",
};

int store_fail(struct sqlite_store *s, const char *what)
{
	return store_fail_db(s, s->db, what);
}

int store_fail_db(struct sqlite_store *s, sqlite3 *db, const char *what)
{
	int code = sqlite3_extended_errcode(db) & 0xff;

	fprintf(stderr, "store: %s: %s\n", what, sqlite3_errmsg(db));
	if ((code == SQLITE_CORRUPT || code == SQLITE_NOTADB) && !atomic_exchange(&s->corrupt, true))
		fprintf(stderr, "store: the database is damaged: /readyz answers 503 store_corrupt from now on; "
			"stop batchnormd, run `batchnormd check`, and restore the latest backup\n");
	return -EIO;
}

int store_exec(struct sqlite_store *s, enum store_stmt which, const char *what)
{
	sqlite3_stmt *st = s->stmt[which];
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_fail(s, what);
}

int store_bind_floats(sqlite3_stmt *st, int col, const float *v, size_t n)
{
	unsigned char *blob;

	if (!v)
		return sqlite3_bind_null(st, col);
	blob = malloc(n * 4);
	if (!blob)
		return SQLITE_NOMEM;
	for (size_t i = 0; i < n; i++) {
		uint32_t u;

		memcpy(&u, &v[i], 4);
		for (int b = 0; b < 4; b++)
			blob[i * 4 + (size_t)b] = (unsigned char)(u >> (8 * b));
	}
	return sqlite3_bind_blob64(st, col, blob, n * 4, free);
}

int store_column_floats(sqlite3_stmt *st, int col, size_t n, float **ret)
{
	const unsigned char *blob = sqlite3_column_blob(st, col);
	float *v;

	if ((size_t)sqlite3_column_bytes(st, col) != n * 4 || !blob)
		return -EIO;
	v = malloc(n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint32_t u = 0;

		for (int b = 0; b < 4; b++)
			u |= (uint32_t)blob[i * 4 + (size_t)b] << (8 * b);
		memcpy(&v[i], &u, 4);
	}
	*ret = v;
	return 0;
}

/* Apply the migrations past the database's user_version, all in one transaction. */
static int migrate(struct sqlite_store *s)
{
	sqlite3_stmt *st;
	int64_t version;
	char pragma[64];

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "reading user_version");
	version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
	sqlite3_finalize(st);
	if (version < 0)
		return store_fail(s, "reading user_version");
	if ((uint64_t)version > bnd_migrations_sqlite_count) {
		fprintf(stderr, "store: the database's schema version %lld is newer than this batchnormd "
			"knows (%zu): refusing to start; use a newer batchnormd\n",
			(long long)version, bnd_migrations_sqlite_count);
		return -EPROTO;
	}
	if ((uint64_t)version == bnd_migrations_sqlite_count)
		return 0;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(s, "starting the migrations");
	for (size_t i = (size_t)version; i < bnd_migrations_sqlite_count; i++) {
		if (sqlite3_exec(s->db, (const char *)bnd_migrations_sqlite[i].data, NULL, NULL, NULL) != SQLITE_OK) {
			fprintf(stderr, "store: migration %s: %s\n", bnd_migrations_sqlite[i].name, sqlite3_errmsg(s->db));
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			return -EIO;
		}
	}
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %zu", bnd_migrations_sqlite_count);
	if (sqlite3_exec(s->db, pragma, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		int rc = store_fail(s, "committing the migrations");

		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	fprintf(stderr, "store: schema migrated from version %lld to %zu\n", (long long)version,
		bnd_migrations_sqlite_count);
	return 0;
}

static void sqlite_close(struct bnd_store *b);

/* Open the read connection and prepare its statements, once the schema is current. */
static int open_reader(struct sqlite_store *s, const char *path)
{
	static const enum store_stmt reads[] = { ST_HISTORY_PAGE, ST_PING };

	if (sqlite3_open_v2(path, &s->rdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		fprintf(stderr, "store: opening %s to read: %s\n", path,
			s->rdb ? sqlite3_errmsg(s->rdb) : "out of memory");
		return -EIO;
	}
	sqlite3_busy_timeout(s->rdb, 5000);
	if (sqlite3_exec(s->rdb, "PRAGMA query_only = ON", NULL, NULL, NULL) != SQLITE_OK)
		return store_fail_db(s, s->rdb, "opening the read connection");
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		if (sqlite3_prepare_v3(s->rdb, stmt_sql[reads[i]], -1, SQLITE_PREPARE_PERSISTENT,
				&s->rstmt[reads[i]], NULL) != SQLITE_OK)
			return store_fail_db(s, s->rdb, "preparing statements");
	return 0;
}

static int sqlite_open(const char *path, bool sync_full, struct bnd_store **ret)
{
	struct sqlite_store *s = calloc(1, sizeof(*s));
	char pragmas[160];
	int rc = -EIO;

	if (!s)
		return -ENOMEM;
	s->base.ops = &bnd_store_sqlite_ops;
	atomic_init(&s->corrupt, false);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->rlock, NULL);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		fprintf(stderr, "store: opening %s: %s\n", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	snprintf(pragmas, sizeof(pragmas), "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; "
		"PRAGMA foreign_keys = ON;", sync_full ? "FULL" : "NORMAL");
	if (sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		store_fail(s, "setting WAL mode");
		goto fail;
	}
	rc = migrate(s);
	if (rc < 0)
		goto fail;
	for (int i = 0; i < ST_COUNT_; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				&s->stmt[i], NULL) != SQLITE_OK) {
			rc = store_fail(s, "preparing statements");
			goto fail;
		}
	}
	rc = open_reader(s, path);
	if (rc < 0)
		goto fail;
	*ret = &s->base;
	return 0;
fail:
	sqlite_close(&s->base);
	return rc;
}

static void sqlite_close(struct bnd_store *b)
{
	struct sqlite_store *s = (struct sqlite_store *)b;

	for (int i = 0; i < ST_COUNT_; i++) {
		sqlite3_finalize(s->stmt[i]);
		sqlite3_finalize(s->rstmt[i]);
	}
	if (s->rdb && sqlite3_close(s->rdb) != SQLITE_OK)
		fprintf(stderr, "store: closing: %s\n", sqlite3_errmsg(s->rdb));
	if (s->db && sqlite3_close(s->db) != SQLITE_OK)
		fprintf(stderr, "store: closing: %s\n", sqlite3_errmsg(s->db));
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->rlock);
	free(s);
}

/* Bind a layer's columns from ?2 on, in LAYER_COLS order. */
static int bind_layer(sqlite3_stmt *st, const struct bnd_snapshot *snap)
{
	const struct bn_config *c = &snap->cfg;
	const struct bn_state *x = &snap->state;
	size_t n = c->num_features;
	int rc = 0;

	rc |= sqlite3_bind_int64(st, 2, (sqlite3_int64)n);
	rc |= sqlite3_bind_double(st, 3, c->eps);
	rc |= c->cumulative ? sqlite3_bind_null(st, 4) : sqlite3_bind_double(st, 4, c->momentum);
	rc |= sqlite3_bind_int(st, 5, c->affine);
	rc |= sqlite3_bind_int(st, 6, c->track_running_stats);
	rc |= store_bind_floats(st, 7, x->weight, n);
	rc |= store_bind_floats(st, 8, x->bias, n);
	rc |= store_bind_floats(st, 9, x->running_mean, n);
	rc |= store_bind_floats(st, 10, x->running_var, n);
	rc |= sqlite3_bind_int64(st, 11, x->num_batches_tracked);
	rc |= sqlite3_bind_int64(st, 12, snap->step);
	rc |= sqlite3_bind_int64(st, 13, snap->version);
	rc |= sqlite3_bind_int64(st, 14, snap->created_ms);
	rc |= sqlite3_bind_int64(st, 15, snap->updated_ms);
	return rc == SQLITE_OK ? 0 : -ENOMEM;
}

int store_insert_locked(struct sqlite_store *s, const char *name, struct bnd_snapshot *snap)
{
	sqlite3_stmt *st = s->stmt[ST_INSERT];
	int rc = bind_layer(st, snap);

	if (rc == 0 && sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT) != SQLITE_OK)
		rc = -ENOMEM;
	if (rc < 0) {
		sqlite3_clear_bindings(st);
		return rc;
	}
	rc = store_exec(s, ST_INSERT, "inserting a layer");
	if (rc == 0)
		snap->id = sqlite3_last_insert_rowid(s->db);
	return rc;
}

int store_update_locked(struct sqlite_store *s, const struct bnd_snapshot *snap)
{
	sqlite3_stmt *st = s->stmt[ST_UPDATE];

	if (bind_layer(st, snap) < 0 || sqlite3_bind_int64(st, 1, snap->id) != SQLITE_OK) {
		sqlite3_clear_bindings(st);
		return -ENOMEM;
	}
	return store_exec(s, ST_UPDATE, "updating a layer");
}

/* Add the history row and trim the oldest, inside a transaction. */
static int sqlite_history_add(struct bnd_store *b, int64_t id, const struct bnd_history_entry *h,
		int64_t keep, int64_t keep_bytes)
{
	struct sqlite_store *s = (struct sqlite_store *)b;
	/* A layer's entries all have its width: the byte cap is a count of them. */
	int64_t fit = keep_bytes / bnd_store_history_entry_bytes(h);

	sqlite3_stmt *st = s->stmt[ST_HISTORY_ADD];
	size_t n = h->num_features;
	int rc = 0;

	rc |= sqlite3_bind_int64(st, 1, id);
	rc |= sqlite3_bind_int64(st, 2, h->step);
	rc |= sqlite3_bind_int64(st, 3, h->at_ms);
	rc |= sqlite3_bind_int64(st, 4, h->count);
	rc |= h->running_mean ? sqlite3_bind_int64(st, 5, h->num_batches_tracked) : sqlite3_bind_null(st, 5);
	rc |= store_bind_floats(st, 6, h->batch_mean, n);
	rc |= store_bind_floats(st, 7, h->batch_var, n);
	rc |= store_bind_floats(st, 8, h->running_mean, n);
	rc |= store_bind_floats(st, 9, h->running_var, n);
	if (rc != SQLITE_OK) {
		sqlite3_clear_bindings(st);
		return -ENOMEM;
	}
	rc = store_exec(s, ST_HISTORY_ADD, "adding history");
	if (fit < keep)
		keep = fit > 1 ? fit : 1;
	if (rc < 0 || h->step <= keep)
		return rc;
	st = s->stmt[ST_HISTORY_TRIM];
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, h->step - keep);
	return store_exec(s, ST_HISTORY_TRIM, "trimming history");
}

/* Begin a transaction: takes the store's lock until commit or rollback. */
static int sqlite_begin(struct bnd_store *b)
{
	struct sqlite_store *s = (struct sqlite_store *)b;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = store_exec(s, ST_BEGIN, "beginning a transaction");
	if (rc < 0)
		pthread_mutex_unlock(&s->lock);
	return rc;
}

static void sqlite_rollback(struct bnd_store *b)
{
	struct sqlite_store *s = (struct sqlite_store *)b;

	if (!sqlite3_get_autocommit(s->db))
		store_exec(s, ST_ROLLBACK, "rolling back");
	pthread_mutex_unlock(&s->lock);
}

static int sqlite_commit(struct bnd_store *b)
{
	struct sqlite_store *s = (struct sqlite_store *)b;
	int rc = store_exec(s, ST_COMMIT, "committing");

	if (rc < 0 && !sqlite3_get_autocommit(s->db))
		store_exec(s, ST_ROLLBACK, "rolling back");
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int sqlite_insert(struct bnd_store *b, const char *name, struct bnd_snapshot *snap)
{
	return store_insert_locked((struct sqlite_store *)b, name, snap);
}

static int sqlite_update(struct bnd_store *b, const struct bnd_snapshot *snap)
{
	return store_update_locked((struct sqlite_store *)b, snap);
}

/* Delete a layer's history and row, inside a transaction. */
static int sqlite_remove(struct bnd_store *b, int64_t id)
{
	struct sqlite_store *s = (struct sqlite_store *)b;
	int rc;

	sqlite3_bind_int64(s->stmt[ST_DELETE_HISTORY], 1, id);
	rc = store_exec(s, ST_DELETE_HISTORY, "deleting history");
	if (rc == 0) {
		sqlite3_bind_int64(s->stmt[ST_DELETE_LAYER], 1, id);
		rc = store_exec(s, ST_DELETE_LAYER, "deleting a layer");
	}
	return rc;
}

static int sqlite_ping(struct bnd_store *b)
{
	struct sqlite_store *s = (struct sqlite_store *)b;
	int rc;

	if (atomic_load(&s->corrupt))
		return -EUCLEAN;
	pthread_mutex_lock(&s->rlock);
	rc = sqlite3_step(s->rstmt[ST_PING]);
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_fail_db(s, s->rdb, "answering /readyz");
	sqlite3_reset(s->rstmt[ST_PING]);
	pthread_mutex_unlock(&s->rlock);
	return atomic_load(&s->corrupt) ? -EUCLEAN : rc;
}

const struct bnd_store_ops bnd_store_sqlite_ops = {
	.name = "sqlite",
	.shared = false,
	.open = sqlite_open,
	.close = sqlite_close,
	.load = sqlite_load,
	.begin = sqlite_begin,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.insert = sqlite_insert,
	.update = sqlite_update,
	.history_add = sqlite_history_add,
	.remove = sqlite_remove,
	.history = sqlite_history,
	.calibration_get = sqlite_calibration_get,
	.calibration_put = sqlite_calibration_put,
	.calibration_delete = sqlite_calibration_delete,
	.ping = sqlite_ping,
};
