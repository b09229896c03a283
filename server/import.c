/*
 * import.c: a state_dict's keys grouped into BatchNorm layers (import.h;
 * import_body.c reads the body into keys).
 *
 * Every key becomes an item (its group prefix, its field, and where its
 * value is: a jansson value or a safetensors entry). Items of the five
 * BatchNorm fields are sorted by prefix, so a group's items are adjacent,
 * and each group that is a layer is read whole: num_features from its
 * running_mean (or weight), every other array checked against it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "errors.h"
#include "import_internal.h"

static const char *const field_names[] = {
	"weight", "bias", "running_mean", "running_var", "num_batches_tracked",
};

int import_invalid(struct bn_error *e, const char *code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void import_item_init(struct import_item *it, const char *key)
{
	const char *dot = strrchr(key, '.');
	const char *f = dot ? dot + 1 : key;

	it->key = key;
	it->plen = dot ? (size_t)(dot - key) : 0;
	it->field = F_OTHER;
	for (int i = 0; i < F_OTHER; i++)
		if (strcmp(f, field_names[i]) == 0)
			it->field = (enum field)i;
}

static int cmp_item(const void *a, const void *b)
{
	const struct import_item *x = a, *y = b;
	size_t n = x->plen < y->plen ? x->plen : y->plen;
	int c = memcmp(x->key, y->key, n);

	if (c)
		return c;
	if (x->plen != y->plen)
		return x->plen < y->plen ? -1 : 1;
	return (int)x->field - (int)y->field;
}

static int cmp_layer(const void *a, const void *b)
{
	return strcmp(((const struct bnd_import_layer *)a)->name, ((const struct bnd_import_layer *)b)->name);
}

/* The length of it's array, as the value that fixes num_features. */
static int length_of(const struct import_item *it, size_t *ret, struct bn_error *e)
{
	if (it->j && json_is_array(it->j) && json_array_size(it->j) > 0) {
		*ret = json_array_size(it->j);
		return 0;
	}
	if (it->st && it->st->rank == 1 && it->st->shape[0] > 0) {
		*ret = it->st->shape[0];
		return 0;
	}
	return import_invalid(e, BN_E_SHAPE_MISMATCH, "%.100s must be a non-empty one-dimensional array "
		"(a tensor of shape [num_features])", it->key);
}

/* it's values, exactly n of them, into a new *ret. */
static int read_floats(const struct import_item *it, size_t n, float **ret, struct bn_error *e)
{
	size_t got = it->j ? (json_is_array(it->j) ? json_array_size(it->j) : 0) :
		it->st->rank == 1 ? it->st->shape[0] : 0;
	float *v;
	int rc = 0;

	if (got != n || (it->j && !json_is_array(it->j)))
		return import_invalid(e, BN_E_SHAPE_MISMATCH, "%.100s: expected a one-dimensional array of %zu "
			"values (num_features, from the layer's other keys), got %s%zu", it->key, n,
			it->st && it->st->rank != 1 ? "a tensor of rank " : "", it->st && it->st->rank != 1 ?
			(size_t)it->st->rank : got);
	v = malloc(n * sizeof(*v));
	if (!v) {
		import_invalid(e, BN_E_NO_MEMORY, "out of memory");
		return -ENOMEM;
	}
	if (it->st) {
		rc = bn_st_floats(it->st, v, e);
	} else {
		for (size_t i = 0; i < n && rc == 0; i++) {
			json_t *x = json_array_get(it->j, i);
			double d = json_number_value(x);

			if (!json_is_number(x))
				rc = import_invalid(e, BN_E_WRONG_TYPE, "%.100s[%zu] must be a number", it->key, i);
			else if (!isfinite(d) || !isfinite((float)d))
				rc = import_invalid(e, BN_E_OUT_OF_RANGE, "%.100s[%zu]: %g is beyond float32", it->key, i, d);
			else
				v[i] = (float)d;
		}
	}
	for (size_t i = 0; rc == 0 && it->field == F_VAR && i < n; i++)
		if (v[i] < 0)
			rc = import_invalid(e, BND_E_INVALID_STATE, "%.100s[%zu] must be >= 0, got %g", it->key, i,
				(double)v[i]);
	if (rc < 0) {
		free(v);
		return rc;
	}
	*ret = v;
	return 0;
}

static int read_nbt(const struct import_item *it, int64_t *ret, struct bn_error *e)
{
	int64_t n;
	int rc;

	if (it->st) {
		rc = bn_st_int64(it->st, &n, e);
		if (rc < 0)
			return rc;
	} else if (json_is_integer(it->j)) {
		n = (int64_t)json_integer_value(it->j);
	} else {
		return import_invalid(e, BN_E_WRONG_TYPE, "%.100s must be an integer literal (3, not 3.0)", it->key);
	}
	if (n < 0 || n > BN_MAX_BATCHES_TRACKED)
		return import_invalid(e, BND_E_INVALID_STATE, "%.100s must be from 0 to 2^53, got %lld", it->key,
			(long long)n);
	*ret = n;
	return 0;
}

int import_read_rates(json_t *obj, const char *where, double *eps, bool *eps_set,
		double *momentum, bool *cumulative, bool *momentum_set, struct bn_error *e)
{
	json_t *v = json_object_get(obj, "eps");

	if (v) {
		if (!json_is_number(v))
			return import_invalid(e, BN_E_INVALID_CONFIG, "%s: eps must be a number", where);
		*eps = json_number_value(v);
		*eps_set = true;
	}
	v = json_object_get(obj, "momentum");
	if (v) {
		if (!json_is_number(v) && !json_is_null(v))
			return import_invalid(e, BN_E_INVALID_CONFIG, "%s: momentum must be a number or null", where);
		*cumulative = json_is_null(v);
		*momentum = *cumulative ? 0.0 : json_number_value(v);
		*momentum_set = true;
	}
	return 0;
}

/* The config of layer L from its items and the overrides. */
static int configure(struct bnd_import_layer *L, size_t n, const char *prefix, const struct import_options *o,
		struct bn_error *e)
{
	json_t *over = o->layers ? json_object_get(o->layers, prefix) : NULL;
	double eps = o->eps, momentum = o->momentum;
	bool eps_set = o->eps_set, momentum_set = o->momentum_set, cumulative = o->cumulative;
	struct bn_error ce = { 0 };
	int rc;

	if (L->has_weight != L->has_bias)
		return import_invalid(e, BND_E_INVALID_STATE, "%s has %s but not %s: an affine layer has both",
			L->key, L->has_weight ? "weight" : "bias", L->has_weight ? "bias" : "weight");
	if (L->has_mean != L->has_var)
		return import_invalid(e, BND_E_INVALID_STATE, "%s has %s but not %s: a layer that tracks running "
			"stats has both", L->key, L->has_mean ? "running_mean" : "running_var",
			L->has_mean ? "running_var" : "running_mean");
	if (L->has_nbt && !L->has_mean)
		return import_invalid(e, BND_E_INVALID_STATE, "%s has num_batches_tracked without running stats", L->key);
	if (over) {
		if (!json_is_object(over))
			return import_invalid(e, BN_E_WRONG_TYPE, "layers[\"%.100s\"] must be an object", prefix);
		rc = import_read_rates(over, L->key, &eps, &eps_set, &momentum, &cumulative, &momentum_set, e);
		if (rc < 0)
			return rc;
	}
	bn_config_default(&L->cfg, n);
	L->cfg.affine = L->has_weight;
	L->cfg.track_running_stats = L->has_mean;
	if (eps_set)
		L->cfg.eps = eps;
	if (momentum_set) {
		L->cfg.momentum = momentum;
		L->cfg.cumulative = cumulative;
	}
	L->eps_set = eps_set;
	L->momentum_set = momentum_set;
	rc = bn_config_check(&L->cfg, o->max_features, &ce);
	if (rc < 0)
		return import_invalid(e, ce.code, "%s: %s", L->key, ce.detail);
	return 0;
}

/* The layer's name: the import prefix and the group's. */
static int name_layer(struct bnd_import_layer *L, const struct import_item *first, const struct import_options *o,
		struct bn_error *e)
{
	size_t q = strlen(o->prefix);

	snprintf(L->key, sizeof(L->key), "%.*s", (int)(sizeof(L->key) - 1), first->key);
	if (first->plen == 0) {
		/* A bare module's keys ("running_mean"): the import prefix alone names it. */
		if (q && o->prefix[q - 1] == '.')
			q--;
		if (q == 0)
			return import_invalid(e, BND_E_INVALID_NAME, "%s has no prefix to name its layer: send "
				"?prefix=NAME", first->key);
	}
	if (q + first->plen > BND_NAME_MAX)
		return import_invalid(e, BND_E_INVALID_NAME, "%.100s: the layer name would be longer than %d",
			first->key, BND_NAME_MAX);
	memcpy(L->name, o->prefix, q);
	memcpy(L->name + q, first->key, first->plen);
	L->name[q + first->plen] = '\0';
	if (!bnd_name_valid(L->name))
		return import_invalid(e, BND_E_INVALID_NAME, "%.100s: layer name \"%s\" is not 1 to %d of "
			"A-Z a-z 0-9 . _ -, starting with a letter or digit", first->key, L->name, BND_NAME_MAX);
	return 0;
}

/* Read the group it[0..n) into L. */
static int read_layer(struct bnd_import_layer *L, const struct import_item *it, size_t n, const struct import_options *o,
		struct bn_error *e)
{
	const struct import_item *fix = NULL;
	char prefix[BND_NAME_MAX + 32];
	size_t c = 0;
	int rc;

	rc = name_layer(L, &it[0], o, e);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (it[i].field == F_MEAN || (!fix && it[i].field != F_NBT))
			fix = &it[i];
		if (i && it[i].field == it[i - 1].field)
			return import_invalid(e, BND_E_INVALID_STATE, "%.100s appears twice", it[i].key);
	}
	if (!fix)
		return import_invalid(e, BND_E_INVALID_STATE, "%.100s: a layer needs running_mean or weight", it[0].key);
	rc = length_of(fix, &c, e);
	for (size_t i = 0; i < n && rc == 0; i++) {
		switch (it[i].field) {
		case F_WEIGHT: L->has_weight = true; rc = read_floats(&it[i], c, &L->weight, e); break;
		case F_BIAS: L->has_bias = true; rc = read_floats(&it[i], c, &L->bias, e); break;
		case F_MEAN: L->has_mean = true; rc = read_floats(&it[i], c, &L->mean, e); break;
		case F_VAR: L->has_var = true; rc = read_floats(&it[i], c, &L->var, e); break;
		case F_NBT: L->has_nbt = true; rc = read_nbt(&it[i], &L->nbt, e); break;
		case F_OTHER: break;
		}
	}
	if (rc < 0)
		return rc;
	snprintf(prefix, sizeof(prefix), "%.*s", (int)it[0].plen, it[0].key);
	return configure(L, c, prefix, o, e);
}

/* Whether the group it[0..n) is a layer: running_mean and running_var, or named in "layers". */
static bool is_layer(const struct import_item *it, size_t n, const struct import_options *o)
{
	bool mean = false, var = false;
	char prefix[BND_NAME_MAX + 32];

	for (size_t i = 0; i < n; i++) {
		mean |= it[i].field == F_MEAN;
		var |= it[i].field == F_VAR;
	}
	if (mean && var)
		return true;
	if (!o->layers || it[0].plen >= sizeof(prefix))
		return false;
	snprintf(prefix, sizeof(prefix), "%.*s", (int)it[0].plen, it[0].key);
	return json_object_get(o->layers, prefix) != NULL;
}

/* Every "layers" entry must name a layer of the state_dict. */
static int check_overrides(const struct bnd_import *im, const struct import_options *o, struct bn_error *e)
{
	size_t q = strlen(o->prefix);
	const char *key;
	json_t *v;

	json_object_foreach(o->layers, key, v) {
		bool found = false;

		for (size_t i = 0; i < im->count && !found; i++)
			found = strncmp(im->layers[i].name, o->prefix, q) == 0 && strcmp(im->layers[i].name + q, key) == 0;
		if (!found)
			return import_invalid(e, BN_E_UNKNOWN_KEY, "layers[\"%.100s\"] names no layer of the state_dict "
				"(a prefix with running_mean and running_var, or with weight and bias)", key);
	}
	return 0;
}

int import_build(struct import_item *items, size_t n, const struct import_options *o, struct bnd_import *im,
		struct bn_error *e)
{
	size_t kept = 0;
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		if (items[i].field == F_OTHER)
			im->ignored++;
		else
			items[kept++] = items[i];
	}
	qsort(items, kept, sizeof(*items), cmp_item);
	im->layers = calloc(kept ? kept : 1, sizeof(*im->layers));
	if (!im->layers) {
		import_invalid(e, BN_E_NO_MEMORY, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0, j; i < kept && rc == 0; i = j) {
		for (j = i + 1; j < kept && items[j].plen == items[i].plen &&
				memcmp(items[j].key, items[i].key, items[i].plen) == 0; j++)
			;
		if (!is_layer(&items[i], j - i, o)) {
			im->ignored += j - i;
			continue;
		}
		if (im->count == o->max_layers) {
			import_invalid(e, BN_E_TOO_LARGE, "%.100s: the import holds more than %zu layers "
				"(--max-import-layers)", items[i].key, o->max_layers);
			return -E2BIG;
		}
		rc = read_layer(&im->layers[im->count++], &items[i], j - i, o, e);
	}
	if (rc == 0 && o->layers)
		rc = check_overrides(im, o, e);
	if (rc == 0)
		qsort(im->layers, im->count, sizeof(*im->layers), cmp_layer);
	return rc;
}

