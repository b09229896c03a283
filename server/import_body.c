/*
 * import_body.c: POST /v1/import's query and body (JSON or safetensors)
 * read into keys, which import.c groups into layers (import.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "import_internal.h"

const char *bnd_import_mode_name(enum bnd_import_mode m)
{
	return m == BND_IMPORT_CREATE ? "create" : m == BND_IMPORT_REPLACE ? "replace" : "update";
}

/* A query parameter that does not parse: 400. */
static int bad_query(struct bn_error *e, const char *what)
{
	import_invalid(e, BND_E_INVALID_QUERY, "%s", what);
	return -EBADMSG;
}

/* mode, prefix, eps and momentum from the query string. */
static int query_options(const struct bnd_request *req, struct import_options *o, struct bn_error *e)
{
	const char *mode = bnd_query(req, "mode"), *eps = bnd_query(req, "eps");
	const char *mom = bnd_query(req, "momentum"), *prefix = bnd_query(req, "prefix");
	char *end;

	if (mode && strcmp(mode, "create") && strcmp(mode, "replace") && strcmp(mode, "update"))
		return bad_query(e, "mode must be create, replace or update");
	if (mode)
		o->mode = !strcmp(mode, "create") ? BND_IMPORT_CREATE : !strcmp(mode, "replace") ?
			BND_IMPORT_REPLACE : BND_IMPORT_UPDATE;
	o->prefix = prefix ? prefix : "";
	if (strlen(o->prefix) > BND_NAME_MAX)
		return bad_query(e, "prefix is longer than 128 characters");
	if (eps) {
		o->eps = strtod(eps, &end);
		if (!*eps || *end)
			return bad_query(e, "eps must be a number");
		o->eps_set = true;
	}
	if (mom) {
		o->cumulative = strcmp(mom, "null") == 0;
		o->momentum = o->cumulative ? 0.0 : strtod(mom, &end);
		if (!o->cumulative && (!*mom || *end))
			return bad_query(e, "momentum must be a number or null");
		o->momentum_set = true;
	}
	return 0;
}

/* The wrapped JSON form's options: mode, eps, momentum, layers (they win over the query's). */
static int body_options(json_t *root, struct import_options *o, struct bn_error *e)
{
	const char *key;
	json_t *v;
	int rc;

	json_object_foreach(root, key, v) {
		if (strcmp(key, "state_dict") && strcmp(key, "mode") && strcmp(key, "eps") &&
		    strcmp(key, "momentum") && strcmp(key, "layers"))
			return import_invalid(e, BN_E_UNKNOWN_KEY, "unknown key \"%.64s\": with \"state_dict\", the body "
				"may have mode, eps, momentum and layers", key);
	}
	if (!json_is_object(json_object_get(root, "state_dict")))
		return import_invalid(e, BN_E_WRONG_TYPE, "state_dict must be an object of tensors");
	v = json_object_get(root, "mode");
	if (v) {
		const char *m = json_string_value(v);

		if (!m || (strcmp(m, "create") && strcmp(m, "replace") && strcmp(m, "update")))
			return import_invalid(e, BN_E_INVALID_CONFIG, "mode must be \"create\", \"replace\" or \"update\"");
		o->mode = !strcmp(m, "create") ? BND_IMPORT_CREATE : !strcmp(m, "replace") ?
			BND_IMPORT_REPLACE : BND_IMPORT_UPDATE;
	}
	rc = import_read_rates(root, "the body", &o->eps, &o->eps_set, &o->momentum, &o->cumulative,
		&o->momentum_set, e);
	if (rc < 0)
		return rc;
	v = json_object_get(root, "layers");
	if (v && !json_is_object(v))
		return import_invalid(e, BN_E_WRONG_TYPE, "layers must be an object of {\"eps\", \"momentum\"} by prefix");
	o->layers = v;
	return 0;
}

/* A JSON body: items point into *ret_root, which the caller frees. */
static int json_items(const struct bnd_request *req, struct import_options *o, json_t **ret_root,
		struct import_item **ret_items, size_t *ret_n, struct bn_error *e)
{
	json_error_t jerr;
	json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr), *sd, *v;
	struct import_item *items;
	const char *key;
	size_t n = 0;
	int rc = 0;

	if (!root) {
		import_invalid(e, BN_E_INVALID_JSON, "the body is not a JSON object: %s (line %d, column %d)",
			jerr.text, jerr.line, jerr.column);
		return -EBADMSG;
	}
	*ret_root = root;
	sd = root;
	if (json_object_get(root, "state_dict")) {
		rc = body_options(root, o, e);
		sd = json_object_get(root, "state_dict");
	}
	if (rc < 0)
		return rc;
	if (json_object_size(sd) > BND_IMPORT_KEYS_MAX) {
		import_invalid(e, BN_E_TOO_LARGE, "the state_dict has %zu keys, over the limit of %d",
			json_object_size(sd), BND_IMPORT_KEYS_MAX);
		return -E2BIG;
	}
	items = calloc(json_object_size(sd) + 1, sizeof(*items));
	if (!items) {
		import_invalid(e, BN_E_NO_MEMORY, "out of memory");
		return -ENOMEM;
	}
	json_object_foreach(sd, key, v) {
		import_item_init(&items[n], key);
		items[n++].j = v;
	}
	*ret_items = items;
	*ret_n = n;
	return 0;
}

/* A safetensors body: items point into *st, which the caller finishes. */
static int st_items(const struct bnd_request *req, struct bn_safetensors *st, struct import_item **ret_items,
		size_t *ret_n, struct bn_error *e)
{
	struct import_item *items;
	int rc = bn_safetensors_parse(req->body, req->body_len, BND_IMPORT_HEADER_MAX, BND_IMPORT_KEYS_MAX,
		st, e);

	if (rc < 0)
		return rc;
	items = calloc(st->count + 1, sizeof(*items));
	if (!items) {
		import_invalid(e, BN_E_NO_MEMORY, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < st->count; i++) {
		import_item_init(&items[i], st->entries[i].name);
		items[i].st = &st->entries[i];
	}
	*ret_items = items;
	*ret_n = st->count;
	return 0;
}

int bnd_import_parse(const struct bnd_request *req, struct bnd_import *ret, struct bn_error *e)
{
	struct import_options o = { .max_layers = req->d->opt.max_import_layers,
		.max_features = req->d->opt.max_features };
	struct bn_safetensors st = { 0 };
	struct bnd_import im = { 0 };
	struct import_item *items = NULL;
	json_t *root = NULL;
	size_t n = 0;
	int rc;

	rc = query_options(req, &o, e);
	if (rc == 0)
		rc = req->body_binary ? st_items(req, &st, &items, &n, e) : json_items(req, &o, &root, &items, &n, e);
	if (rc == 0 && !req->body_binary && !json_is_object(root))
		rc = import_invalid(e, BN_E_WRONG_TYPE, "the body must be a JSON object: a state_dict");
	if (rc == 0)
		rc = import_build(items, n, &o, &im, e);
	im.mode = o.mode;
	free(items);
	json_decref(root);
	bn_safetensors_finish(&st);
	if (rc < 0) {
		bnd_import_finish(&im);
		return rc;
	}
	*ret = im;
	return 0;
}

void bnd_import_finish(struct bnd_import *im)
{
	for (size_t i = 0; i < im->count; i++) {
		free(im->layers[i].weight);
		free(im->layers[i].bias);
		free(im->layers[i].mean);
		free(im->layers[i].var);
	}
	free(im->layers);
	im->layers = NULL;
	im->count = 0;
}
