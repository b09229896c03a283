/*
 * routes/models.c: POST /v1/import and GET /v1/export, a whole model's
 * BatchNorm layers as one state_dict.
 *
 * An import holds the registry's create_lock (so no layer is created or
 * deleted meanwhile) and the write locks of every existing layer it
 * touches, taken in name order (the only place that holds more than one,
 * so no other order can deadlock with it). It builds every new snapshot
 * from each layer's newest state (pending, else committed: If-Match is
 * judged against it), adds the new layers hidden, and queues them all as
 * one change for the committer (layer_change.h's group), which writes
 * them in one transaction and only then publishes them; the answer waits
 * for that commit. A refusal or a failed commit changes nothing anywhere.
 *
 * Memory is reserved from the budget (budget.h) before it is taken: a
 * bound for reading the body (a JSON tree, or a safetensors header and the
 * arrays decoded), then, once the layers are known, their new snapshots
 * and the answer; an export reserves its answer once it knows its layers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/json.h"
#include "bn/safetensors.h"
#include "budget.h"
#include "codec.h"
#include "errors.h"
#include "import.h"
#include "replica.h"
#include "routes/routes.h"

struct target {
	const struct bnd_import_layer *in;
	struct bnd_layer *l;        /* a reference: the existing layer, or the new one once built */
	struct bnd_snapshot *cur;   /* the existing layer's snapshot; NULL for a new layer */
	struct bnd_snapshot *next;  /* what the import makes of it */
	bool locked;                /* l's write_lock is held */
	bool added;                 /* a new layer this import put in the registry */
};

/* Copy the arrays the import has into st (whose config has them). */
static void load_arrays(struct bn_state *st, const struct bnd_import_layer *in)
{
	size_t n = st->num_features * sizeof(float);

	if (in->weight && st->weight)
		memcpy(st->weight, in->weight, n);
	if (in->bias && st->bias)
		memcpy(st->bias, in->bias, n);
	if (in->mean && st->running_mean)
		memcpy(st->running_mean, in->mean, n);
	if (in->var && st->running_var)
		memcpy(st->running_var, in->var, n);
	if (in->has_nbt)
		st->num_batches_tracked = in->nbt;
}

/* mode update: the keys given must be ones the layer has, of its length. */
static int update_fits(struct bnd_response *res, const struct bnd_import_layer *in, const struct bn_config *c)
{
	if (in->cfg.num_features != c->num_features)
		return bnd_fail(res, -EEXIST, BND_E_CONFLICT, "%s has %zu values but layer %s has %zu features; "
			"mode update keeps each layer's config (use mode replace)", in->key,
			in->cfg.num_features, in->name, c->num_features);
	if ((in->cfg.affine && !c->affine) || (in->cfg.track_running_stats && !c->track_running_stats))
		return bnd_fail(res, -EEXIST, BND_E_CONFLICT, "%s: layer %s has no %s; mode update keeps each "
			"layer's config (use mode replace)", in->key, in->name,
			in->cfg.affine && !c->affine ? "weight and bias" : "running stats");
	return 0;
}

/* The snapshot an existing layer becomes. */
static int next_existing(struct bnd_response *res, enum bnd_import_mode mode, struct target *t)
{
	const struct bnd_import_layer *in = t->in;
	struct bn_config cfg = in->cfg;
	int rc;

	if (mode == BND_IMPORT_UPDATE) {
		rc = update_fits(res, in, &t->cur->cfg);
		if (rc < 0)
			return rc;
		cfg = t->cur->cfg;
		if (in->eps_set)
			cfg.eps = in->cfg.eps;
		if (in->momentum_set) {
			cfg.momentum = in->cfg.momentum;
			cfg.cumulative = in->cfg.cumulative;
		}
		rc = bnd_snapshot_copy(t->cur, &t->next);
		if (rc == 0)
			t->next->cfg = cfg;
	} else {
		/* replace: the state_dict's structure, the layer's own eps and momentum unless given. */
		if (!in->eps_set)
			cfg.eps = t->cur->cfg.eps;
		if (!in->momentum_set) {
			cfg.momentum = t->cur->cfg.momentum;
			cfg.cumulative = t->cur->cfg.cumulative;
		}
		rc = bnd_snapshot_create(&cfg, &t->next);
		if (rc == 0) {
			t->next->id = t->cur->id;
			t->next->version = t->cur->version;
			t->next->step = t->cur->step;
			t->next->created_ms = t->cur->created_ms;
		}
	}
	if (rc < 0)
		return bnd_fail(res, -ENOMEM, NULL, "out of memory");
	t->next->version++;
	return 0;
}

/* Look the layer up, check mode and If-Match, lock it, and build its next snapshot. */
static int plan(struct bnd_request *req, struct bnd_response *res, enum bnd_import_mode mode,
		struct target *t, int64_t now)
{
	const struct bnd_import_layer *in = t->in;
	const char *if_match = bnd_header(req, "If-Match");
	char etag[BND_ETAG_MAX];
	int rc;

	rc = bnd_replica_layer(req->d, in->name, &t->l);
	if (rc < 0 && rc != -ENOENT)
		return bnd_fail(res, rc, NULL, "the store could not be read; nothing was imported");
	if (rc < 0) {
		t->l = NULL;
		if (mode == BND_IMPORT_UPDATE)
			return bnd_fail(res, -EEXIST, BND_E_CONFLICT, "%s: there is no layer named %s; mode "
				"update changes existing layers only (use mode replace)", in->key, in->name);
		if (if_match)
			return bnd_fail(res, -ESTALE, BND_E_PRECONDITION, "%s: If-Match was given but there is "
				"no layer named %s", in->key, in->name);
		if (bnd_snapshot_create(&in->cfg, &t->next) < 0)
			return bnd_fail(res, -ENOMEM, NULL, "out of memory");
		t->next->created_ms = now;
	} else {
		if (mode == BND_IMPORT_CREATE)
			return bnd_fail(res, -EEXIST, BND_E_CONFLICT, "%s: layer %s exists; mode create makes new "
				"layers only (use mode replace or update)", in->key, in->name);
		pthread_mutex_lock(&t->l->write_lock);
		t->locked = true;
		if (atomic_load(&t->l->creating) || atomic_load(&t->l->deleted) || t->l->pending_delete)
			return bnd_fail(res, -EEXIST, BND_E_CONFLICT, "%s: layer %s is being %s; import again once "
				"that request is answered", in->key, in->name,
				atomic_load(&t->l->creating) ? "created" : "deleted");
		/* The state the import applies to: the newest queued, else the committed one. */
		t->cur = bnd_layer_base(t->l);
		bnd_snapshot_etag(t->cur, etag);
		if (if_match && !bnd_etag_listed(if_match, etag))
			return bnd_fail(res, -ESTALE, BND_E_PRECONDITION, "%s: layer %s is at ETag %s, which "
				"If-Match does not list: it changed since it was read", in->key, in->name, etag);
		rc = next_existing(res, mode, t);
		if (rc < 0)
			return rc;
	}
	load_arrays(&t->next->state, in);
	t->next->updated_ms = now;
	return 0;
}

/* What an import's answer needs once its commit is done. */
struct import_wait {
	struct bnd_import im;
	struct target *t;            /* im.count of them */
	struct bnd_change_group g;   /* its members, one a layer */
};

static void import_wait_free(struct import_wait *w)
{
	for (size_t i = 0; w->t && i < w->im.count; i++) {
		bnd_snapshot_unref(w->t[i].cur);
		bnd_snapshot_unref(w->t[i].next);
		bnd_layer_unref(w->t[i].l);
	}
	free(w->t);
	free(w->g.member);
	bnd_import_finish(&w->im);
	free(w);
}

static void answer_import(struct bnd_response *res, const struct bnd_import *im, const struct target *t);

static int import_answer(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc)
{
	struct import_wait *w = ctx;

	(void)req;
	if (rc == -ECANCELED)
		rc = bnd_fail(res, rc, NULL, "the import was computed from an earlier change of one of its layers "
			"whose commit failed; nothing changed");
	else if (rc == -ESHUTDOWN)
		rc = bnd_fail(res, rc, NULL, "the server is shutting down; the import was not committed and "
			"nothing changed");
	else if (rc < 0)
		rc = bnd_fail(res, rc, NULL, "the store could not commit the import (nor anything committed "
			"with it); nothing changed");
	else
		answer_import(res, &w->im, w->t);
	import_wait_free(w);
	return rc;
}

/*
 * Add the new layers to the registry, hidden until committed, and queue
 * every target as one change, all or none. The locks are held.
 */
static int queue(struct bnd_request *req, struct bnd_response *res, struct import_wait *w)
{
	struct bnd_daemon *d = req->d;
	struct target *t = w->t;
	size_t n = w->im.count, fresh = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++)
		fresh += !t[i].cur;
	if (fresh && bnd_registry_count(&d->registry) + fresh > d->opt.max_layers)
		return bnd_fail(res, -EDQUOT, BND_E_TOO_MANY_LAYERS, "the import would add %zu layers to the %zu "
			"there are, over the limit of %zu (--max-layers)", fresh,
			bnd_registry_count(&d->registry), d->opt.max_layers);
	w->g.member = calloc(n + 1, sizeof(*w->g.member));
	if (!w->g.member || bnd_registry_reserve(&d->registry, fresh) < 0)
		return bnd_fail(res, -ENOMEM, NULL, "out of memory");
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (!t[i].cur) {
			atomic_fetch_add(&t[i].next->refs, 1);
			rc = bnd_layer_create(t[i].in->name, t[i].next, &t[i].l);
			if (rc < 0) {
				bnd_snapshot_unref(t[i].next);
				t[i].l = NULL;
				break;
			}
			atomic_store(&t[i].l->creating, true);
			rc = bnd_registry_add(&d->registry, t[i].l);
			t[i].added = rc == 0;
		}
		w->g.member[i] = (struct bnd_change){ .kind = t[i].cur ? BND_CHANGE_UPDATE : BND_CHANGE_INSERT,
			.layer = t[i].l, .next = t[i].next };
		atomic_fetch_add(&t[i].next->refs, 1);
		w->g.n = i + 1;
	}
	if (rc == 0) {
		rc = bnd_request_defer_group(req, res, &w->g, import_answer, w);
		if (rc == BND_DEFERRED)
			return rc;
	} else {
		for (size_t i = 0; i < w->g.n; i++)
			bnd_snapshot_unref(w->g.member[i].next);
		rc = bnd_fail(res, -ENOMEM, NULL, "out of memory");
	}
	/* Nothing queued: the layers the import made never were. */
	for (size_t i = 0; i < n; i++)
		if (t[i].added)
			bnd_registry_remove(&d->registry, t[i].l);
	return rc;
}

static void answer_import(struct bnd_response *res, const struct bnd_import *im, const struct target *t)
{
	size_t created = 0;
	char etag[BND_ETAG_MAX];

	for (size_t i = 0; i < im->count; i++)
		created += !t[i].cur;
	bnd_json(res, 200);
	bn_buf_printf(&res->body, "{\"mode\": \"%s\", \"created\": %zu, \"updated\": %zu, "
		"\"ignored_keys\": %zu, \"layers\": [", bnd_import_mode_name(im->mode), created,
		im->count - created, im->ignored);
	for (size_t i = 0; i < im->count; i++) {
		bn_buf_puts(&res->body, i ? ", {\"name\": " : "{\"name\": ");
		bn_json_string_write(&res->body, t[i].in->name);
		bnd_snapshot_etag(t[i].next, etag);
		bn_buf_printf(&res->body, ", \"created\": %s, \"num_features\": %zu, \"etag\": ",
			t[i].cur ? "false" : "true", t[i].next->cfg.num_features);
		bn_json_string_write(&res->body, etag);
		bn_buf_puts(&res->body, "}");
	}
	bn_buf_puts(&res->body, "]}");
}

/*
 * The most reading the body can take: a JSON tree (a number takes at
 * least 2 bytes of text and at most about 56 in the tree) and the floats
 * read out (4 per 2 bytes of text); or a safetensors header's entries (at
 * most 4 bytes per header byte) and the floats decoded (4 per 2 bytes of
 * data, float16 being the narrowest).
 */
static size_t parse_max(const struct bnd_request *req)
{
	size_t len = req->body_len, h = 0;

	if (!req->body_binary)
		return len * 38 + 4096;
	for (int i = 0; i < 8 && len >= 8; i++)
		h |= (size_t)(unsigned char)req->body[i] << (8 * i);
	if (h > len)
		h = len;
	return 4 * h + 2 * (len - h) + 4096;
}

/* Reserve what the layers' new snapshots and the answer take. */
static int reserve_layers(struct bnd_request *req, struct bnd_response *res, const struct bnd_import *im)
{
	size_t copies = 0, answer = 256;
	int rc;

	for (size_t i = 0; i < im->count; i++) {
		copies += 2 * (16 * im->layers[i].cfg.num_features + 256);
		answer += 2 * BND_NAME_MAX + 128;
	}
	rc = bnd_reserve(req, res, copies, "the imported layers");
	return rc < 0 ? rc : bnd_reserve_answer(req, res, answer);
}

int bnd_models_import(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_registry *reg = &req->d->registry;
	struct bnd_import im;
	struct bn_error e = { 0 };
	struct import_wait *w;
	struct target *t;
	int64_t now = bnd_now_ms();
	size_t bound = parse_max(req), kept = 0;
	int rc;

	rc = bnd_reserve(req, res, bound, "reading the state_dict");
	if (rc < 0)
		return rc;
	rc = bnd_import_parse(req, &im, &e);
	bnd_request_drop_body(req);
	if (rc < 0)
		return bnd_fail_bn(res, rc, &e);
	/* The tree or header is gone; what stays is the arrays read out, 4 of C floats a layer. */
	for (size_t i = 0; i < im.count; i++)
		kept += 16 * im.layers[i].cfg.num_features + sizeof(*im.layers);
	bnd_unreserve(req, bound > kept ? bound - kept : 0);
	rc = reserve_layers(req, res, &im);
	if (rc < 0) {
		bnd_import_finish(&im);
		return rc;
	}
	w = calloc(1, sizeof(*w));
	t = calloc(im.count + 1, sizeof(*t));
	if (!w || !t) {
		free(w);
		free(t);
		bnd_import_finish(&im);
		return bnd_fail(res, -ENOMEM, NULL, "out of memory");
	}
	w->im = im;
	w->t = t;
	pthread_mutex_lock(&reg->create_lock);
	for (size_t i = 0; i < im.count && rc == 0; i++) {
		t[i].in = &w->im.layers[i];
		rc = plan(req, res, im.mode, &t[i], now);
	}
	if (rc == 0)
		rc = queue(req, res, w);
	for (size_t i = 0; i < im.count; i++)
		if (t[i].locked)
			pthread_mutex_unlock(&t[i].l->write_lock);
	pthread_mutex_unlock(&reg->create_lock);
	if (rc != BND_DEFERRED)
		import_wait_free(w);
	return rc;
}

/* Whether the Accept header asks for safetensors. */
static bool wants_safetensors(const struct bnd_request *req)
{
	const char *accept = bnd_header(req, "Accept");

	return accept && strcasestr(accept, "application/octet-stream");
}

/* The state_dict key of a layer's field: its name (less prefix when stripped) and the field. */
static void key_of(char *out, size_t size, const char *name, size_t strip, const char *field)
{
	const char *rest = name + strip;

	snprintf(out, size, "%s%s%s", rest, *rest ? "." : "", field);
}

static void export_json(struct bnd_response *res, struct bnd_layer **l, struct bnd_snapshot **snap,
		size_t n, size_t strip)
{
	static const char *const fields[] = { "weight", "bias", "running_mean", "running_var" };
	char key[BND_NAME_MAX + 32];
	bool first = true;

	bnd_json(res, 200);
	bn_buf_puts(&res->body, "{");
	for (size_t i = 0; i < n; i++) {
		const struct bn_state *st = &snap[i]->state;
		const float *v[] = { st->weight, st->bias, st->running_mean, st->running_var };

		for (int f = 0; f < 4; f++) {
			if (!v[f])
				continue;
			key_of(key, sizeof(key), l[i]->name, strip, fields[f]);
			bn_buf_puts(&res->body, first ? "" : ", ");
			first = false;
			bn_json_string_write(&res->body, key);
			bn_buf_puts(&res->body, ": ");
			bn_json_floats_write(&res->body, v[f], st->num_features);
		}
		if (snap[i]->cfg.track_running_stats) {
			key_of(key, sizeof(key), l[i]->name, strip, "num_batches_tracked");
			bn_buf_puts(&res->body, ", ");
			bn_json_string_write(&res->body, key);
			bn_buf_printf(&res->body, ": %lld", (long long)st->num_batches_tracked);
		}
	}
	bn_buf_puts(&res->body, "}");
}

/* Safetensors: F32 arrays, I64 num_batches_tracked, and each layer's ETag in __metadata__. */
static int export_st(struct bnd_response *res, struct bnd_layer **l, struct bnd_snapshot **snap,
		size_t n, size_t strip)
{
	static const char *const fields[] = { "weight", "bias", "running_mean", "running_var",
		"num_batches_tracked" };
	struct bn_st_out *out = calloc(5 * n + 1, sizeof(*out));
	char (*keys)[BND_NAME_MAX + 32] = calloc(5 * n + 1, sizeof(*keys));
	char (*etags)[BND_ETAG_MAX] = calloc(n + 1, sizeof(*etags));
	const char **meta = calloc(2 * n + 1, sizeof(*meta));
	size_t k = 0;
	int rc = -ENOMEM;

	if (!out || !keys || !etags || !meta)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct bn_state *st = &snap[i]->state;
		const float *v[] = { st->weight, st->bias, st->running_mean, st->running_var };

		for (int f = 0; f < 5; f++) {
			if (f < 4 && !v[f])
				continue;
			if (f == 4 && !snap[i]->cfg.track_running_stats)
				continue;
			key_of(keys[k], sizeof(keys[k]), l[i]->name, strip, fields[f]);
			out[k] = (struct bn_st_out){ .name = keys[k], .dtype = f < 4 ? BN_ST_F32 : BN_ST_I64,
				.rank = f < 4, .shape = { st->num_features }, .count = f < 4 ? st->num_features : 1,
				.f32 = f < 4 ? v[f] : NULL, .i64 = st->num_batches_tracked };
			k++;
		}
		bnd_snapshot_etag(snap[i], etags[i]);
		meta[2 * i] = l[i]->name;
		meta[2 * i + 1] = etags[i];
	}
	res->status = 200;
	res->content_type = "application/octet-stream";
	rc = bn_safetensors_write(&res->body, out, k, meta, n);
out:
	free(out);
	free(keys);
	free(etags);
	free(meta);
	return rc < 0 ? bnd_fail(res, rc, NULL, "the answer could not be built") : 0;
}

/* Reserve the export's answer (and, for safetensors, its header and key scratch). */
static int reserve_export(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot **snap, size_t n)
{
	size_t text = 64, scratch = 0;
	int rc;

	for (size_t i = 0; i < n; i++) {
		size_t c = snap[i]->cfg.num_features;

		text += wants_safetensors(req) ? 16 * c + 8 + 6 * (BND_NAME_MAX + 128) :
			4 * bnd_floats_text_max(c) + 5 * (2 * BND_NAME_MAX + 64);
		scratch += wants_safetensors(req) ? 5 * (BND_NAME_MAX + 160) + 6 * (BND_NAME_MAX + 128) : 0;
	}
	rc = scratch ? bnd_reserve(req, res, scratch, "the export") : 0;
	return rc < 0 ? rc : bnd_reserve_answer(req, res, text);
}

int bnd_models_export(struct bnd_request *req, struct bnd_response *res)
{
	struct bnd_registry *reg = &req->d->registry;
	const char *prefix = bnd_query(req, "prefix"), *strip = bnd_query(req, "strip");
	struct bnd_snapshot **snap = NULL;
	struct bnd_layer **all;
	size_t n, m = 0, plen;
	int rc = 0;

	prefix = prefix ? prefix : "";
	plen = strlen(prefix);
	if (plen > BND_NAME_MAX)
		return bnd_fail(res, -EBADMSG, BND_E_INVALID_QUERY, "prefix is longer than %d characters", BND_NAME_MAX);
	if (strip && strcmp(strip, "true") && strcmp(strip, "false"))
		return bnd_fail(res, -EBADMSG, BND_E_INVALID_QUERY, "strip must be true or false");
	/* A shared store: the layers as stored now (another daemon may have changed them). */
	rc = bnd_replica_sync_all(req->d);
	if (rc < 0)
		return bnd_fail(res, rc, NULL, "the store could not be read");
	/* With create_lock and every write lock held at once, the export is one moment's state. */
	pthread_mutex_lock(&reg->create_lock);
	if (bnd_registry_list(reg, &all, &n) < 0) {
		pthread_mutex_unlock(&reg->create_lock);
		return bnd_fail(res, -ENOMEM, NULL, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (strncmp(all[i]->name, prefix, plen) == 0)
			all[m++] = all[i];
		else
			bnd_layer_unref(all[i]);
	}
	snap = calloc(m + 1, sizeof(*snap));
	for (size_t i = 0; snap && i < m; i++)
		pthread_mutex_lock(&all[i]->write_lock);
	for (size_t i = 0; snap && i < m; i++) {
		snap[i] = bnd_layer_snapshot(all[i]);
		pthread_mutex_unlock(&all[i]->write_lock);
	}
	pthread_mutex_unlock(&reg->create_lock);
	if (!snap)
		rc = bnd_fail(res, -ENOMEM, NULL, "out of memory");
	else
		rc = reserve_export(req, res, snap, m);
	if (rc == 0 && wants_safetensors(req))
		rc = export_st(res, all, snap, m, strip && !strcmp(strip, "true") ? plen : 0);
	else if (rc == 0)
		export_json(res, all, snap, m, strip && !strcmp(strip, "true") ? plen : 0);
	for (size_t i = 0; i < m; i++) {
		if (snap)
			bnd_snapshot_unref(snap[i]);
		bnd_layer_unref(all[i]);
	}
	free(snap);
	free(all);
	return rc;
}
