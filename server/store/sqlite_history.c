/*
 * store/sqlite_history.c: reading layers back at start, and pages of history
 * (the SQLite backend's load and history operations).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "store/sqlite_internal.h"

/* Read one layers row (id, name, LAYER_COLS) into a new snapshot. */
static int read_layer(sqlite3_stmt *st, struct bnd_snapshot **ret)
{
	struct bnd_snapshot *snap = calloc(1, sizeof(*snap));
	struct bn_config *c;
	struct bn_state *x;
	sqlite3_int64 n = sqlite3_column_int64(st, 2);
	int rc = 0;

	if (!snap)
		return -ENOMEM;
	if (n < 1 || n > INT32_MAX) {
		free(snap);
		return -EIO;
	}
	atomic_init(&snap->refs, 1);
	c = &snap->cfg;
	x = &snap->state;
	snap->id = sqlite3_column_int64(st, 0);
	c->num_features = x->num_features = (size_t)n;
	c->eps = sqlite3_column_double(st, 3);
	c->cumulative = sqlite3_column_type(st, 4) == SQLITE_NULL;
	c->momentum = c->cumulative ? 0.0 : sqlite3_column_double(st, 4);
	c->affine = sqlite3_column_int(st, 5) != 0;
	c->track_running_stats = sqlite3_column_int(st, 6) != 0;
	if (c->affine) {
		rc = rc ? rc : store_column_floats(st, 7, c->num_features, &x->weight);
		rc = rc ? rc : store_column_floats(st, 8, c->num_features, &x->bias);
	}
	if (c->track_running_stats) {
		rc = rc ? rc : store_column_floats(st, 9, c->num_features, &x->running_mean);
		rc = rc ? rc : store_column_floats(st, 10, c->num_features, &x->running_var);
	}
	x->num_batches_tracked = sqlite3_column_int64(st, 11);
	snap->step = sqlite3_column_int64(st, 12);
	snap->version = sqlite3_column_int64(st, 13);
	snap->created_ms = sqlite3_column_int64(st, 14);
	snap->updated_ms = sqlite3_column_int64(st, 15);
	if (rc < 0) {
		bnd_snapshot_unref(snap);
		return rc;
	}
	*ret = snap;
	return 0;
}

int sqlite_load(struct bnd_store *b,
		int (*add)(void *ud, const char *name, struct bnd_snapshot *snap), void *ud)
{
	struct sqlite_store *s = (struct sqlite_store *)b;
	sqlite3_stmt *st;
	int rc = 0, step;

	if (sqlite3_prepare_v2(s->db, "SELECT id, name, num_features, eps, momentum, affine, "
			"track_running_stats, weight, bias, running_mean, running_var, num_batches_tracked, "
			"step, version, created_at, updated_at FROM layers ORDER BY name", -1, &st, NULL) != SQLITE_OK)
		return store_fail(s, "loading layers");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		struct bnd_snapshot *snap;

		rc = read_layer(st, &snap);
		if (rc == -EIO)
			fprintf(stderr, "store: layer %s: a stored array has the wrong length\n", name);
		if (rc == 0)
			rc = add(ud, name, snap);
		if (rc < 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = store_fail(s, "loading layers");
	sqlite3_finalize(st);
	return rc;
}

/* Read a history row into h, allocating its arrays into v[4]. */
static int read_entry(sqlite3_stmt *st, size_t n, struct bnd_history_entry *h, float *v[4])
{
	int rc;

	h->step = sqlite3_column_int64(st, 0);
	h->at_ms = sqlite3_column_int64(st, 1);
	h->count = sqlite3_column_int64(st, 2);
	h->num_batches_tracked = sqlite3_column_int64(st, 3);
	h->num_features = n;
	rc = store_column_floats(st, 4, n, &v[0]);
	rc = rc ? rc : store_column_floats(st, 5, n, &v[1]);
	if (rc == 0 && sqlite3_column_type(st, 6) != SQLITE_NULL) {
		rc = store_column_floats(st, 6, n, &v[2]);
		rc = rc ? rc : store_column_floats(st, 7, n, &v[3]);
	}
	h->batch_mean = v[0];
	h->batch_var = v[1];
	h->running_mean = v[2];
	h->running_var = v[3];
	return rc;
}

int sqlite_history(struct bnd_store *b, int64_t id, size_t num_features, int64_t after,
		size_t limit, int (*row)(void *ud, const struct bnd_history_entry *h), void *ud,
		bool *ret_more)
{
	struct sqlite_store *s = (struct sqlite_store *)b;
	sqlite3_stmt *st = s->rstmt[ST_HISTORY_PAGE];
	size_t seen = 0;
	int rc = 0, step;

	pthread_mutex_lock(&s->rlock);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, after);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)limit + 1); /* one more says whether a next page exists */
	while ((step = sqlite3_step(st)) == SQLITE_ROW && seen < limit) {
		struct bnd_history_entry h;
		float *v[4] = { NULL, NULL, NULL, NULL };

		rc = read_entry(st, num_features, &h, v);
		if (rc == 0)
			rc = row(ud, &h);
		for (int i = 0; i < 4; i++)
			free(v[i]);
		if (rc != 0)
			break;
		seen++;
	}
	if (rc > 0) {
		/* The reader ended the page before this entry: it is the next page's first. */
		*ret_more = true;
		rc = 0;
	} else if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = store_fail_db(s, s->rdb, "reading history");
	} else if (rc == 0) {
		*ret_more = step == SQLITE_ROW;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&s->rlock);
	return rc;
}
