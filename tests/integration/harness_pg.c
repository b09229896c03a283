/*
 * harness_pg.c: the integration tests on the PostgreSQL backend
 * (harness.h): a database per daemon in the test cluster, replicas that
 * share one, and stopping the cluster's server under load.
 */
#include "harness.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

static atomic_uint databases;

bool it_store_pg(void)
{
	const char *b = getenv("BATCHNORMD_TEST_BACKEND");

	return b && strcmp(b, "postgresql") == 0;
}

bool it_skip_on_pg(const char *what)
{
	if (!it_store_pg())
		return false;
	printf("# skipped on PostgreSQL: %s\n", what);
	return true;
}

/* Run sql on database db of the cluster at base; the first value of the first row into *ret_value. */
static int run_sql(const char *base, const char *db, const char *sql, long *ret_value)
{
	char url[600];
	PGconn *c;
	PGresult *r;
	int rc = 0;

	snprintf(url, sizeof(url), "%s/%s", base, db);
	c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "PostgreSQL at %s: %s", url, PQerrorMessage(c));
		PQfinish(c);
		return -EIO;
	}
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
		rc = -EIO;
	} else if (ret_value && PQntuples(r) > 0) {
		*ret_value = strtol(PQgetvalue(r, 0, 0), NULL, 10);
	}
	PQclear(r);
	PQfinish(c);
	return rc;
}

/* The database name in d->store (after the last '/'). */
static const char *db_name(const struct it_daemon *d)
{
	const char *slash = strrchr(d->store, '/');

	return slash ? slash + 1 : "";
}

int it_pg_create(struct it_daemon *d)
{
	const char *base = getenv("BATCHNORMD_TEST_STORE");
	char name[64], sql[128];

	if (!base || !*base || strlen(base) > 400) {
		fprintf(stderr, "no PostgreSQL: run under tests/pg/cluster run (BATCHNORMD_TEST_STORE)\n");
		return -ENOENT;
	}
	snprintf(name, sizeof(name), "bnd_it_%ld_%u", (long)getpid(), atomic_fetch_add(&databases, 1));
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	if (run_sql(base, "postgres", sql, NULL) < 0)
		exit(1);
	snprintf(d->store, sizeof(d->store), "%s/%s", base, name);
	d->store_owner = true;
	return 0;
}

void it_pg_drop(struct it_daemon *d)
{
	const char *base = getenv("BATCHNORMD_TEST_STORE");
	char sql[128];

	if (!d->store_owner || !base)
		return;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db_name(d));
	run_sql(base, "postgres", sql, NULL);
	d->store_owner = false;
}

void it_daemon_share(struct it_daemon *d, const struct it_daemon *from)
{
	if (d->store_owner)
		it_pg_drop(d);
	snprintf(d->store, sizeof(d->store), "%s", from->store);
	d->store_owner = false;
}

int it_pg_server(const char *action)
{
	const char *dir = getenv("BATCHNORMD_TEST_PG_DIR");
	char cmd[1024];

	if (!dir || strlen(dir) > 512 || strchr(dir, '\'')) {
		fprintf(stderr, "no BATCHNORMD_TEST_PG_DIR: run under tests/pg/cluster run\n");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "'%s' %s '%s' >/dev/null", IT_PG_CLUSTER, action, dir);
	return system(cmd) == 0 ? 0 : -1;
}

int it_pg_sql(const struct it_daemon *d, const char *sql, long *ret_value)
{
	const char *base = getenv("BATCHNORMD_TEST_STORE");

	if (!base || !d->store[0])
		return -EIO;
	return run_sql(base, db_name(d), sql, ret_value);
}
