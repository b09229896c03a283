/*
 * store/postgresql_internal.h: what the PostgreSQL backend's files share:
 * the connection pool, this thread's transaction, and typed parameters and
 * columns for libpq's binary format.
 */
#ifndef BND_STORE_POSTGRESQL_INTERNAL_H
#define BND_STORE_POSTGRESQL_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>

#include "store/ops.h"

#define PG_POOL_MAX 16
#define PG_PARAMS_MAX 16

struct pg_store {
	struct bnd_store base;
	char *conninfo;
	bool sync_full;
	pthread_mutex_t lock;        /* guards the pool */
	pthread_cond_t freed;
	PGconn *conns[PG_POOL_MAX];  /* NULL: not connected yet */
	bool busy[PG_POOL_MAX];
	size_t pool;                 /* connections allowed */
};

/* Parameters of one statement, all sent in binary. */
struct pg_params {
	int n;
	const char *v[PG_PARAMS_MAX];
	int len[PG_PARAMS_MAX];
	int fmt[PG_PARAMS_MAX];
	Oid type[PG_PARAMS_MAX];
	unsigned char word[PG_PARAMS_MAX][8];
	unsigned char *owned[PG_PARAMS_MAX];
	bool nomem;
};

void pg_i64(struct pg_params *p, int64_t v);
void pg_f64(struct pg_params *p, double v);
void pg_bool(struct pg_params *p, bool v);
void pg_text(struct pg_params *p, const char *v);
void pg_null(struct pg_params *p, Oid type);
/* n float32 (or float64 when wide) as little-endian bytea; NULL v: SQL NULL. */
void pg_floats(struct pg_params *p, const float *v, size_t n);
void pg_doubles(struct pg_params *p, const double *v, size_t n);
void pg_params_free(struct pg_params *p);

int64_t pg_col_i64(const PGresult *r, int row, int col);
double pg_col_f64(const PGresult *r, int row, int col);
bool pg_col_bool(const PGresult *r, int row, int col);
/* A bytea of exactly n float32 into a new array; -EIO on a wrong length. */
int pg_col_floats(const PGresult *r, int row, int col, size_t n, float **ret);
/* A bytea of exactly n float64 into out; -EIO on a wrong length. */
int pg_col_doubles(const PGresult *r, int row, int col, size_t n, double *out);

/*
 * A connection for one statement or transaction: this thread's transaction's
 * when it has one on s (*ret_slot -1), else one from the pool, connected or
 * reconnected as needed. -EIO when PostgreSQL cannot be reached (logged).
 */
int pg_conn_get(struct pg_store *s, PGconn **ret, int *ret_slot);
void pg_conn_put(struct pg_store *s, int slot);

/*
 * Run sql with p's parameters (p may be NULL), results in binary. The result
 * when it succeeded (the caller PQclears it), else NULL with *rc: -EEXIST on
 * a unique violation, -EIO otherwise (logged with what).
 */
PGresult *pg_exec(PGconn *c, const char *sql, struct pg_params *p, const char *what, int *rc);

/* The same on a connection of its own for the statement; frees p. */
PGresult *pg_run(struct pg_store *s, const char *sql, struct pg_params *p, const char *what, int *rc);

/* The layer and calibration operations (postgresql_layers.c). */
int pg_load(struct bnd_store *b, int (*add)(void *ud, const char *name, struct bnd_snapshot *snap), void *ud);
int pg_insert(struct bnd_store *b, const char *name, struct bnd_snapshot *snap);
int pg_update(struct bnd_store *b, const struct bnd_snapshot *snap);
int pg_history_add(struct bnd_store *b, int64_t id, const struct bnd_history_entry *h,
		int64_t keep, int64_t keep_bytes);
int pg_remove(struct bnd_store *b, int64_t id);
int pg_history(struct bnd_store *b, int64_t id, size_t num_features, int64_t after, size_t limit,
		int (*row)(void *ud, const struct bnd_history_entry *h), void *ud, bool *ret_more);
int pg_lock_layer(struct bnd_store *b, int64_t id, struct bnd_snapshot **ret);
int pg_layer_version(struct bnd_store *b, const char *name, int64_t *ret_id, int64_t *ret_version);
int pg_layer_read(struct bnd_store *b, const char *name, struct bnd_snapshot **ret);
int pg_calibration_get(struct bnd_store *b, int64_t layer_id, size_t num_features,
		struct bn_calibration *ret, struct bnd_calibration_times *times);
int pg_calibration_put(struct bnd_store *b, int64_t layer_id, const struct bn_calibration *c, int64_t now_ms);
int pg_calibration_delete(struct bnd_store *b, int64_t layer_id);

#endif
