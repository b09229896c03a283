/*
 * routes/history.c: GET /v1/layers/{name}/history?after=STEP&limit=N.
 *
 * A page holds up to limit entries and stops before an entry that could
 * take it past HISTORY_PAGE_BYTES (its first entry always goes in): a short
 * page then has next_after set. The page's bytes are reserved from the
 * memory budget before the store is read.
 */
#include <stdlib.h>
#include <string.h>

#include "bn/json.h"
#include "budget.h"
#include "codec.h"
#include "errors.h"
#include "routes/routes.h"

#define HISTORY_PAGE_DEFAULT 100
#define HISTORY_PAGE_MAX 1000
/* A page's text stops before it could pass this. */
#define HISTORY_PAGE_BYTES ((size_t)16 << 20)
/* An entry's text beyond its four arrays: keys, step, time, count, num_batches_tracked. */
#define HISTORY_ENTRY_FIXED 256

/* A query value of decimal digits only, from lo to hi; absent: def. */
static int query_int(struct bnd_request *req, struct bnd_response *res, const char *key,
		long long lo, long long hi, long long def, long long *ret)
{
	const char *s = bnd_query(req, key);
	long long v = 0;

	if (!s) {
		*ret = def;
		return 0;
	}
	if (!*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s))
		goto bad;
	v = strtoll(s, NULL, 10);
	if (v < lo || v > hi)
		goto bad;
	*ret = v;
	return 0;
bad:
	return bnd_fail(res, -EBADMSG, BND_E_INVALID_QUERY, "%s must be an integer from %lld to %lld",
		key, lo, hi);
}

struct page {
	struct bn_buf *out;
	size_t n;
	int64_t last;
	size_t entry_max;   /* the most text one entry of this layer can take */
};

static int write_entry(void *ud, const struct bnd_history_entry *h)
{
	struct page *p = ud;
	struct bn_buf *out = p->out;
	size_t c = h->num_features;

	if (p->n && out->len + p->entry_max > HISTORY_PAGE_BYTES)
		return 1;
	bn_buf_printf(out, "%s{\"step\": %lld, \"at\": ", p->n ? ", " : "", (long long)h->step);
	bnd_time_write(out, h->at_ms);
	bn_buf_printf(out, ", \"count\": %lld", (long long)h->count);
	if (h->running_mean)
		bn_buf_printf(out, ", \"num_batches_tracked\": %lld", (long long)h->num_batches_tracked);
	bn_buf_puts(out, ", \"batch_mean\": ");
	bn_json_floats_write(out, h->batch_mean, c);
	bn_buf_puts(out, ", \"batch_var\": ");
	bn_json_floats_write(out, h->batch_var, c);
	if (h->running_mean) {
		bn_buf_puts(out, ", \"running_mean\": ");
		bn_json_floats_write(out, h->running_mean, c);
		bn_buf_puts(out, ", \"running_var\": ");
		bn_json_floats_write(out, h->running_var, c);
	}
	bn_buf_puts(out, "}");
	p->n++;
	p->last = h->step;
	return out->err;
}

/*
 * Reserve the page: its text, at most limit entries and at most
 * HISTORY_PAGE_BYTES (or its one first entry), and one row's arrays as
 * SQLite and the reader hold them while it is written.
 */
static int reserve_page(struct bnd_request *req, struct bnd_response *res, size_t c, size_t limit,
		size_t *ret_entry_max)
{
	size_t entry = 4 * bnd_floats_text_max(c) + HISTORY_ENTRY_FIXED;
	size_t text = entry > HISTORY_PAGE_BYTES ? entry : HISTORY_PAGE_BYTES;
	int rc;

	if (limit < text / entry)
		text = limit * entry;
	rc = bnd_reserve(req, res, 2 * 4 * c * sizeof(float), "reading the history");
	if (rc == 0)
		rc = bnd_reserve_answer(req, res, text + 64);
	if (rc == 0)
		*ret_entry_max = entry;
	return rc;
}

int bnd_history_get(struct bnd_request *req, struct bnd_response *res)
{
	struct page p = { .out = &res->body };
	struct bnd_snapshot *snap;
	long long after, limit;
	bool more = false;
	int rc;

	rc = query_int(req, res, "after", 0, BN_MAX_BATCHES_TRACKED, 0, &after);
	if (rc == 0)
		rc = query_int(req, res, "limit", 1, HISTORY_PAGE_MAX, HISTORY_PAGE_DEFAULT, &limit);
	if (rc < 0)
		return rc;
	snap = bnd_layer_snapshot(req->layer);
	rc = reserve_page(req, res, snap->cfg.num_features, (size_t)limit, &p.entry_max);
	if (rc < 0) {
		bnd_snapshot_unref(snap);
		return rc;
	}
	bnd_json(res, 200);
	bn_buf_puts(&res->body, "{\"steps\": [");
	rc = bnd_store_history(req->d->store, snap->id, snap->cfg.num_features, after, (size_t)limit,
		write_entry, &p, &more);
	bnd_snapshot_unref(snap);
	if (rc < 0)
		return bnd_fail(res, rc, NULL, "the store could not read the history");
	if (more)
		bn_buf_printf(&res->body, "], \"next_after\": %lld}", (long long)p.last);
	else
		bn_buf_puts(&res->body, "], \"next_after\": null}");
	return 0;
}
