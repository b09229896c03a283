/*
 * store/postgresql_layers.c: the layers, history and calibration tables on
 * PostgreSQL (migrations/postgresql/): the statements of the backend's
 * operations (store/ops.h), all with binary parameters and results.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/postgresql_internal.h"

#define LAYER_SELECT "SELECT id, name, num_features, eps, momentum, affine, track_running_stats, " \
	"weight, bias, running_mean, running_var, num_batches_tracked, step, version, created_at, " \
	"updated_at FROM layers "

/* Read row of r (LAYER_SELECT's columns) into a new snapshot. */
static int read_layer(const PGresult *r, int row, struct bnd_snapshot **ret)
{
	struct bnd_snapshot *snap;
	struct bn_config *c;
	struct bn_state *x;
	int64_t n = pg_col_i64(r, row, 2);
	int rc = 0;

	if (n < 1 || n > INT32_MAX)
		return -EIO;
	snap = calloc(1, sizeof(*snap));
	if (!snap)
		return -ENOMEM;
	atomic_init(&snap->refs, 1);
	c = &snap->cfg;
	x = &snap->state;
	snap->id = pg_col_i64(r, row, 0);
	c->num_features = x->num_features = (size_t)n;
	c->eps = pg_col_f64(r, row, 3);
	c->cumulative = PQgetisnull(r, row, 4);
	c->momentum = c->cumulative ? 0.0 : pg_col_f64(r, row, 4);
	c->affine = pg_col_bool(r, row, 5);
	c->track_running_stats = pg_col_bool(r, row, 6);
	if (c->affine) {
		rc = rc ? rc : pg_col_floats(r, row, 7, c->num_features, &x->weight);
		rc = rc ? rc : pg_col_floats(r, row, 8, c->num_features, &x->bias);
	}
	if (c->track_running_stats) {
		rc = rc ? rc : pg_col_floats(r, row, 9, c->num_features, &x->running_mean);
		rc = rc ? rc : pg_col_floats(r, row, 10, c->num_features, &x->running_var);
	}
	x->num_batches_tracked = pg_col_i64(r, row, 11);
	snap->step = pg_col_i64(r, row, 12);
	snap->version = pg_col_i64(r, row, 13);
	snap->created_ms = pg_col_i64(r, row, 14);
	snap->updated_ms = pg_col_i64(r, row, 15);
	if (rc < 0) {
		fprintf(stderr, "store: layer %s: a stored array has the wrong length\n", PQgetvalue(r, row, 1));
		bnd_snapshot_unref(snap);
		return rc;
	}
	*ret = snap;
	return 0;
}

int pg_load(struct bnd_store *b, int (*add)(void *ud, const char *name, struct bnd_snapshot *snap), void *ud)
{
	int rc = 0;
	PGresult *r = pg_run((struct pg_store *)b, LAYER_SELECT "ORDER BY name COLLATE \"C\"", NULL,
		"loading layers", &rc);

	for (int i = 0; r && rc == 0 && i < PQntuples(r); i++) {
		struct bnd_snapshot *snap;

		rc = read_layer(r, i, &snap);
		if (rc == 0)
			rc = add(ud, PQgetvalue(r, i, 1), snap);
	}
	PQclear(r);
	return rc;
}

/* Run sql with p (freed) and read its one layer row, or -ENOENT. */
static int one_layer(struct bnd_store *b, const char *sql, struct pg_params *p, const char *what,
		struct bnd_snapshot **ret)
{
	int rc = 0;
	PGresult *r = pg_run((struct pg_store *)b, sql, p, what, &rc);

	if (r)
		rc = PQntuples(r) == 1 ? read_layer(r, 0, ret) : -ENOENT;
	PQclear(r);
	return rc;
}

int pg_lock_layer(struct bnd_store *b, int64_t id, struct bnd_snapshot **ret)
{
	struct pg_params p = { 0 };

	pg_i64(&p, id);
	return one_layer(b, LAYER_SELECT "WHERE id = $1 FOR UPDATE", &p, "locking a layer", ret);
}

int pg_layer_read(struct bnd_store *b, const char *name, struct bnd_snapshot **ret)
{
	struct pg_params p = { 0 };

	pg_text(&p, name);
	return one_layer(b, LAYER_SELECT "WHERE name = $1", &p, "reading a layer", ret);
}

int pg_layer_version(struct bnd_store *b, const char *name, int64_t *ret_id, int64_t *ret_version)
{
	struct pg_params p = { 0 };
	PGresult *r;
	int rc = 0;

	pg_text(&p, name);
	r = pg_run((struct pg_store *)b, "SELECT id, version FROM layers WHERE name = $1", &p,
		"reading a layer's version", &rc);
	if (r && PQntuples(r) != 1)
		rc = -ENOENT;
	else if (r) {
		*ret_id = pg_col_i64(r, 0, 0);
		*ret_version = pg_col_i64(r, 0, 1);
	}
	PQclear(r);
	return rc;
}

/* A layer's columns from $2 on, in LAYER_SELECT's order after name. */
static void layer_params(struct pg_params *p, const struct bnd_snapshot *snap)
{
	const struct bn_config *c = &snap->cfg;
	const struct bn_state *x = &snap->state;
	size_t n = c->num_features;

	pg_i64(p, (int64_t)n);
	pg_f64(p, c->eps);
	if (c->cumulative)
		pg_null(p, 701);
	else
		pg_f64(p, c->momentum);
	pg_bool(p, c->affine);
	pg_bool(p, c->track_running_stats);
	pg_floats(p, x->weight, n);
	pg_floats(p, x->bias, n);
	pg_floats(p, x->running_mean, n);
	pg_floats(p, x->running_var, n);
	pg_i64(p, x->num_batches_tracked);
	pg_i64(p, snap->step);
	pg_i64(p, snap->version);
	pg_i64(p, snap->created_ms);
	pg_i64(p, snap->updated_ms);
}

int pg_insert(struct bnd_store *b, const char *name, struct bnd_snapshot *snap)
{
	struct pg_params p = { 0 };
	PGresult *r;
	int rc = 0;

	pg_text(&p, name);
	layer_params(&p, snap);
	r = pg_run((struct pg_store *)b, "INSERT INTO layers (name, num_features, eps, momentum, affine, "
		"track_running_stats, weight, bias, running_mean, running_var, num_batches_tracked, step, "
		"version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
		"$13, $14, $15) RETURNING id", &p, "inserting a layer", &rc);
	if (r)
		snap->id = pg_col_i64(r, 0, 0);
	PQclear(r);
	return rc;
}

/*
 * The version check: a change moves the stored version on by exactly one,
 * from the version it was computed from. The row lock makes that hold; the
 * check makes a write that did not lock (an import) fail rather than lose
 * another replica's change.
 */
int pg_update(struct bnd_store *b, const struct bnd_snapshot *snap)
{
	struct pg_params p = { 0 };
	PGresult *r;
	int rc = 0;

	pg_i64(&p, snap->id);
	layer_params(&p, snap);
	r = pg_run((struct pg_store *)b, "UPDATE layers SET num_features = $2, eps = $3, momentum = $4, "
		"affine = $5, track_running_stats = $6, weight = $7, bias = $8, running_mean = $9, "
		"running_var = $10, num_batches_tracked = $11, step = $12, version = $13, created_at = $14, "
		"updated_at = $15 WHERE id = $1 AND version = $13 - 1", &p, "updating a layer", &rc);
	if (r && PQcmdTuples(r)[0] == '0') {
		fprintf(stderr, "store: layer id %lld changed or went meanwhile (not at version %lld)\n",
			(long long)snap->id, (long long)snap->version - 1);
		rc = -EEXIST;
	}
	PQclear(r);
	return rc;
}

int pg_history_add(struct bnd_store *b, int64_t id, const struct bnd_history_entry *h,
		int64_t keep, int64_t keep_bytes)
{
	struct pg_store *s = (struct pg_store *)b;
	int64_t fit = keep_bytes / bnd_store_history_entry_bytes(h);
	struct pg_params p = { 0 };
	size_t n = h->num_features;
	PGresult *r;
	int rc = 0;

	pg_i64(&p, id);
	pg_i64(&p, h->step);
	pg_i64(&p, h->at_ms);
	pg_i64(&p, h->count);
	if (h->running_mean)
		pg_i64(&p, h->num_batches_tracked);
	else
		pg_null(&p, 20);
	pg_floats(&p, h->batch_mean, n);
	pg_floats(&p, h->batch_var, n);
	pg_floats(&p, h->running_mean, n);
	pg_floats(&p, h->running_var, n);
	r = pg_run(s, "INSERT INTO history (layer_id, step, at, count, num_batches_tracked, batch_mean, "
		"batch_var, running_mean, running_var) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", &p,
		"adding history", &rc);
	PQclear(r);
	if (fit < keep)
		keep = fit > 1 ? fit : 1;
	if (rc < 0 || h->step <= keep)
		return rc;
	p = (struct pg_params){ 0 };
	pg_i64(&p, id);
	pg_i64(&p, h->step - keep);
	r = pg_run(s, "DELETE FROM history WHERE layer_id = $1 AND step <= $2", &p, "trimming history", &rc);
	PQclear(r);
	return rc;
}

int pg_remove(struct bnd_store *b, int64_t id)
{
	struct pg_params p = { 0 };
	PGresult *r;
	int rc = 0;

	pg_i64(&p, id);
	/* The history and calibration go with it (ON DELETE CASCADE). */
	r = pg_run((struct pg_store *)b, "DELETE FROM layers WHERE id = $1", &p, "deleting a layer", &rc);
	PQclear(r);
	return rc;
}

/* Call row for each of r's entries, up to limit; see bnd_store_history. */
static int history_rows(const PGresult *r, size_t n, size_t limit,
		int (*row)(void *ud, const struct bnd_history_entry *h), void *ud, bool *ret_more)
{
	size_t rows = (size_t)PQntuples(r);
	int rc = 0;

	for (size_t i = 0; i < rows && i < limit && rc == 0; i++) {
		struct bnd_history_entry h = { 0 };
		float *v[4] = { NULL, NULL, NULL, NULL };
		int k = (int)i;

		h.step = pg_col_i64(r, k, 0);
		h.at_ms = pg_col_i64(r, k, 1);
		h.count = pg_col_i64(r, k, 2);
		h.num_batches_tracked = pg_col_i64(r, k, 3);
		h.num_features = n;
		rc = pg_col_floats(r, k, 4, n, &v[0]);
		rc = rc ? rc : pg_col_floats(r, k, 5, n, &v[1]);
		if (rc == 0 && !PQgetisnull(r, k, 6)) {
			rc = pg_col_floats(r, k, 6, n, &v[2]);
			rc = rc ? rc : pg_col_floats(r, k, 7, n, &v[3]);
		}
		h.batch_mean = v[0];
		h.batch_var = v[1];
		h.running_mean = v[2];
		h.running_var = v[3];
		if (rc == 0)
			rc = row(ud, &h);
		for (int j = 0; j < 4; j++)
			free(v[j]);
	}
	if (rc > 0) {
		*ret_more = true;
		return 0;
	}
	if (rc == 0)
		*ret_more = rows > limit;
	return rc;
}

int pg_history(struct bnd_store *b, int64_t id, size_t num_features, int64_t after, size_t limit,
		int (*row)(void *ud, const struct bnd_history_entry *h), void *ud, bool *ret_more)
{
	struct pg_params p = { 0 };
	PGresult *r;
	int rc = 0;

	pg_i64(&p, id);
	pg_i64(&p, after);
	pg_i64(&p, (int64_t)limit + 1); /* one more says whether a next page exists */
	r = pg_run((struct pg_store *)b, "SELECT step, at, count, num_batches_tracked, batch_mean, batch_var, "
		"running_mean, running_var FROM history WHERE layer_id = $1 AND step > $2 ORDER BY step "
		"LIMIT $3", &p, "reading history", &rc);
	if (r)
		rc = history_rows(r, num_features, limit, row, ud, ret_more);
	PQclear(r);
	return rc;
}

int pg_calibration_get(struct bnd_store *b, int64_t layer_id, size_t num_features,
		struct bn_calibration *ret, struct bnd_calibration_times *times)
{
	struct pg_params p = { 0 };
	struct bn_calibration c;
	PGresult *r;
	int rc = 0;

	pg_i64(&p, layer_id);
	r = pg_run((struct pg_store *)b, "SELECT count, batches, mean, m2, batch_mean_sum, batch_var_sum, "
		"created_at, updated_at FROM calibration WHERE layer_id = $1", &p, "reading a calibration", &rc);
	if (!r)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return -ENOENT;
	}
	rc = bn_calibration_init(&c, num_features);
	if (rc == 0) {
		c.count = pg_col_i64(r, 0, 0);
		c.batches = pg_col_i64(r, 0, 1);
		rc = pg_col_doubles(r, 0, 2, num_features, c.mean);
		rc = rc ? rc : pg_col_doubles(r, 0, 3, num_features, c.m2);
		rc = rc ? rc : pg_col_doubles(r, 0, 4, num_features, c.batch_mean_sum);
		rc = rc ? rc : pg_col_doubles(r, 0, 5, num_features, c.batch_var_sum);
		if (rc == 0 && (c.count < 0 || c.count > BN_MAX_COUNT || c.batches < 0))
			rc = -EIO;
		if (rc < 0)
			bn_calibration_finish(&c);
	}
	if (rc == 0 && times)
		*times = (struct bnd_calibration_times){ pg_col_i64(r, 0, 6), pg_col_i64(r, 0, 7) };
	if (rc == -EIO)
		fprintf(stderr, "store: reading a calibration: a row of the wrong size\n");
	PQclear(r);
	if (rc == 0)
		*ret = c;
	return rc;
}

int pg_calibration_put(struct bnd_store *b, int64_t layer_id, const struct bn_calibration *c, int64_t now_ms)
{
	struct pg_params p = { 0 };
	size_t n = c->num_features;
	PGresult *r;
	int rc = 0;

	pg_i64(&p, layer_id);
	pg_i64(&p, c->count);
	pg_i64(&p, c->batches);
	pg_doubles(&p, c->mean, n);
	pg_doubles(&p, c->m2, n);
	pg_doubles(&p, c->batch_mean_sum, n);
	pg_doubles(&p, c->batch_var_sum, n);
	pg_i64(&p, now_ms);
	r = pg_run((struct pg_store *)b, "INSERT INTO calibration (layer_id, count, batches, mean, m2, "
		"batch_mean_sum, batch_var_sum, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, "
		"$8, $8) ON CONFLICT (layer_id) DO UPDATE SET count = $2, batches = $3, mean = $4, m2 = $5, "
		"batch_mean_sum = $6, batch_var_sum = $7, updated_at = $8", &p, "writing a calibration", &rc);
	PQclear(r);
	return rc;
}

int pg_calibration_delete(struct bnd_store *b, int64_t layer_id)
{
	struct pg_params p = { 0 };
	PGresult *r;
	int rc = 0;

	/* None to delete is no failure: a commit closes whatever is open. */
	pg_i64(&p, layer_id);
	r = pg_run((struct pg_store *)b, "DELETE FROM calibration WHERE layer_id = $1", &p,
		"deleting a calibration", &rc);
	PQclear(r);
	return rc;
}
