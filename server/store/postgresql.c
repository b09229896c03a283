/*
 * store/postgresql.c: the PostgreSQL backend (store/ops.h): a small pool
 * of libpq connections, this thread's transaction, and the migrations.
 * The layers, history and calibration statements are in
 * postgresql_layers.c, the binary wire format in postgresql_wire.c.
 *
 * Several daemons share the database, so this backend is shared: a change
 * locks its layer's row with SELECT ... FOR UPDATE in the transaction that
 * then writes and commits it, and reads confirm the cached version.
 *
 * Connections: up to PG_POOL_MAX (8 used), all opened at start (the
 * store workers use them all at once; one opened under load makes its
 * request wait for a new backend), or when first needed if that failed. A
 * statement or transaction takes one and gives it back; one whose link
 * broke (PostgreSQL restarted) is reset when next taken, so the daemon
 * reconnects by itself; meanwhile every store call fails with -EIO (503
 * store_unavailable). A transaction belongs to the thread that began it
 * (thread-local), so the statements of one request run on its connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "store/postgresql_internal.h"

#define POOL_DEFAULT 8
/* The advisory lock key that serializes migrations across replicas ("bnd" and 1). */
#define MIGRATION_LOCK 0x626e6401LL

/* This thread's open transaction. */
static _Thread_local struct {
	struct pg_store *s;
	PGconn *c;
	int slot;
} tx;

PGresult *pg_exec(PGconn *c, const char *sql, struct pg_params *p, const char *what, int *rc)
{
	PGresult *r;
	ExecStatusType st;
	const char *state;

	if (p && p->nomem) {
		*rc = -ENOMEM;
		return NULL;
	}
	r = PQexecParams(c, sql, p ? p->n : 0, p ? p->type : NULL, p ? p->v : NULL,
		p ? p->len : NULL, p ? p->fmt : NULL, 1);
	st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	*rc = state && strcmp(state, "23505") == 0 ? -EEXIST : -EIO;
	fprintf(stderr, "store: %s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	return NULL;
}

/* Run statements (several may be in sql: the simple protocol) whose results are not needed. */
static int run_simple(PGconn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
		PQclear(r);
		return 0;
	}
	fprintf(stderr, "store: %s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	return -EIO;
}

/*
 * A new connection with this store's settings, or NULL (logged). Defaults
 * the URI may override: give up connecting after 5 s, and notice a silent
 * peer (a partition, a host gone) within about 25 s by TCP keepalives,
 * rather than the OS's two hours, so requests fail with 503 instead of
 * hanging.
 */
static PGconn *connect_one(struct pg_store *s)
{
	static const char *const keys[] = { "connect_timeout", "keepalives_idle", "keepalives_interval",
		"keepalives_count", "application_name", "dbname", NULL };
	const char *values[] = { "5", "10", "5", "3", "batchnormd", s->conninfo, NULL };
	/* The URI comes last in keys and expands in place, so its own settings win. */
	PGconn *c = PQconnectdbParams(keys, values, 1);
	int rc;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "store: connecting to PostgreSQL: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	rc = run_simple(c, s->sync_full ? "SET synchronous_commit = on; SET client_min_messages = warning" :
		"SET synchronous_commit = off; SET client_min_messages = warning", "setting up a connection");
	if (rc < 0) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

int pg_conn_get(struct pg_store *s, PGconn **ret, int *ret_slot)
{
	int slot = -1;

	if (tx.s == s) {
		*ret = tx.c;
		*ret_slot = -1;
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	while (slot < 0) {
		for (size_t i = 0; i < s->pool && slot < 0; i++)
			if (!s->busy[i])
				slot = (int)i;
		if (slot < 0)
			pthread_cond_wait(&s->freed, &s->lock);
	}
	s->busy[slot] = true;
	pthread_mutex_unlock(&s->lock);
	if (s->conns[slot] && PQstatus(s->conns[slot]) != CONNECTION_OK) {
		PQfinish(s->conns[slot]);
		s->conns[slot] = NULL;
	}
	if (!s->conns[slot])
		s->conns[slot] = connect_one(s);
	if (!s->conns[slot]) {
		pg_conn_put(s, slot);
		return -EIO;
	}
	*ret = s->conns[slot];
	*ret_slot = slot;
	return 0;
}

void pg_conn_put(struct pg_store *s, int slot)
{
	if (slot < 0)
		return;
	pthread_mutex_lock(&s->lock);
	s->busy[slot] = false;
	pthread_cond_signal(&s->freed);
	pthread_mutex_unlock(&s->lock);
}

PGresult *pg_run(struct pg_store *s, const char *sql, struct pg_params *p, const char *what, int *rc)
{
	PGresult *r = NULL;
	PGconn *c;
	int slot;

	*rc = pg_conn_get(s, &c, &slot);
	if (*rc == 0) {
		r = pg_exec(c, sql, p, what, rc);
		pg_conn_put(s, slot);
	}
	if (p)
		pg_params_free(p);
	return r;
}

static int pg_begin(struct bnd_store *b)
{
	struct pg_store *s = (struct pg_store *)b;
	PGconn *c;
	int slot, rc;

	if (tx.s == s)
		return 0; /* the transaction bnd_store_lock_layer began: the write joins it */
	rc = pg_conn_get(s, &c, &slot);
	if (rc < 0)
		return rc;
	rc = run_simple(c, "BEGIN", "beginning a transaction");
	if (rc < 0) {
		pg_conn_put(s, slot);
		return rc;
	}
	tx.s = s;
	tx.c = c;
	tx.slot = slot;
	return 0;
}

/* End this thread's transaction with sql (COMMIT or ROLLBACK). */
static int end_tx(struct pg_store *s, const char *sql, const char *what)
{
	int rc;

	if (tx.s != s)
		return 0;
	rc = run_simple(tx.c, sql, what);
	pg_conn_put(s, tx.slot);
	tx.s = NULL;
	tx.c = NULL;
	return rc;
}

static int pg_commit(struct bnd_store *b)
{
	return end_tx((struct pg_store *)b, "COMMIT", "committing");
}

static void pg_rollback(struct bnd_store *b)
{
	end_tx((struct pg_store *)b, "ROLLBACK", "rolling back");
}

static bool pg_in_transaction(struct bnd_store *b)
{
	return tx.s == (struct pg_store *)b;
}

/* Read the schema version under the migration lock; 0 for a new database. */
static int schema_version(PGconn *c, int64_t *ret)
{
	PGresult *r;
	int rc = run_simple(c, "CREATE TABLE IF NOT EXISTS batchnormd_schema (version bigint NOT NULL)",
		"creating the schema version table");

	if (rc < 0)
		return rc;
	r = pg_exec(c, "SELECT version FROM batchnormd_schema", NULL, "reading the schema version", &rc);
	if (!r)
		return rc;
	*ret = PQntuples(r) > 0 ? pg_col_i64(r, 0, 0) : 0;
	if (PQntuples(r) == 0)
		rc = run_simple(c, "INSERT INTO batchnormd_schema (version) VALUES (0)", "setting the schema version");
	PQclear(r);
	return rc;
}

/* Apply the migrations past the database's version, in one transaction, once across replicas. */
static int migrate_locked(PGconn *c)
{
	struct pg_params p = { 0 };
	int64_t version = 0;
	PGresult *r;
	int rc;

	pg_i64(&p, MIGRATION_LOCK);
	r = pg_exec(c, "SELECT pg_advisory_xact_lock($1)", &p, "taking the migration lock", &rc);
	if (!r)
		return rc;
	PQclear(r);
	rc = schema_version(c, &version);
	if (rc < 0)
		return rc;
	if (version < 0 || (uint64_t)version > bnd_migrations_postgresql_count) {
		fprintf(stderr, "store: the database's schema version %lld is newer than this batchnormd "
			"knows (%zu): refusing to start; use a newer batchnormd\n",
			(long long)version, bnd_migrations_postgresql_count);
		return -EPROTO;
	}
	for (size_t i = (size_t)version; i < bnd_migrations_postgresql_count; i++) {
		rc = run_simple(c, (const char *)bnd_migrations_postgresql[i].data, bnd_migrations_postgresql[i].name);
		if (rc < 0)
			return rc;
	}
	if ((uint64_t)version == bnd_migrations_postgresql_count)
		return 0;
	p.n = 0;
	pg_i64(&p, (int64_t)bnd_migrations_postgresql_count);
	r = pg_exec(c, "UPDATE batchnormd_schema SET version = $1", &p, "setting the schema version", &rc);
	PQclear(r);
	if (rc == 0)
		fprintf(stderr, "store: schema migrated from version %lld to %zu\n", (long long)version,
			bnd_migrations_postgresql_count);
	return rc;
}

static int migrate(struct pg_store *s)
{
	PGconn *c;
	int slot, rc = pg_conn_get(s, &c, &slot);

	if (rc < 0)
		return rc;
	rc = run_simple(c, "BEGIN", "beginning the migrations");
	if (rc == 0) {
		rc = migrate_locked(c);
		if (rc == 0)
			rc = run_simple(c, "COMMIT", "committing the migrations");
		else
			run_simple(c, "ROLLBACK", "rolling back the migrations");
	}
	pg_conn_put(s, slot);
	return rc;
}

/*
 * Open the pool's other connections now, before requests come: opening
 * one costs PostgreSQL a new backend process, which under load took
 * hundreds of milliseconds, paid by the request that needed it. One that
 * fails is opened when first needed instead (logged).
 */
static void open_pool(struct pg_store *s)
{
	for (size_t i = 0; i < s->pool; i++) {
		if (s->conns[i])
			continue;
		s->conns[i] = connect_one(s);
		if (!s->conns[i])
			break;
	}
}

static void pg_close(struct bnd_store *b)
{
	struct pg_store *s = (struct pg_store *)b;

	for (size_t i = 0; i < PG_POOL_MAX; i++)
		PQfinish(s->conns[i]);
	pthread_cond_destroy(&s->freed);
	pthread_mutex_destroy(&s->lock);
	free(s->conninfo);
	free(s);
}

static int pg_open(const char *target, bool sync_full, struct bnd_store **ret)
{
	struct pg_store *s = calloc(1, sizeof(*s));
	char *err = NULL;
	PQconninfoOption *opts;
	int rc;

	if (!s)
		return -ENOMEM;
	s->base.ops = &bnd_store_postgresql_ops;
	s->sync_full = sync_full;
	s->pool = POOL_DEFAULT;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->freed, NULL);
	opts = PQconninfoParse(target, &err);
	if (!opts) {
		fprintf(stderr, "store: %s is not a PostgreSQL connection URI: %s", target,
			err ? err : "out of memory\n");
		PQfreemem(err);
		pg_close(&s->base);
		return -EINVAL;
	}
	PQconninfoFree(opts);
	s->conninfo = strdup(target);
	rc = s->conninfo ? migrate(s) : -ENOMEM;
	if (rc < 0) {
		pg_close(&s->base);
		return rc;
	}
	open_pool(s);
	*ret = &s->base;
	return 0;
}

static int pg_ping(struct bnd_store *b)
{
	int rc;
	PGresult *r = pg_run((struct pg_store *)b, "SELECT 1 FROM layers LIMIT 1", NULL, "answering /readyz", &rc);

	PQclear(r);
	return r ? 0 : rc;
}

const struct bnd_store_ops bnd_store_postgresql_ops = {
	.name = "postgresql",
	.shared = true,
	.connections = POOL_DEFAULT,
	.open = pg_open,
	.close = pg_close,
	.load = pg_load,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.insert = pg_insert,
	.update = pg_update,
	.history_add = pg_history_add,
	.remove = pg_remove,
	.history = pg_history,
	.calibration_get = pg_calibration_get,
	.calibration_put = pg_calibration_put,
	.calibration_delete = pg_calibration_delete,
	.ping = pg_ping,
	.lock_layer = pg_lock_layer,
	.layer_version = pg_layer_version,
	.layer_read = pg_layer_read,
	.in_transaction = pg_in_transaction,
};
