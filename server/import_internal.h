/*
 * import_internal.h: what import.c (keys into layers) and import_body.c
 * (the body and query into keys) share; not part of import.h's API.
 */
#ifndef BND_IMPORT_INTERNAL_H
#define BND_IMPORT_INTERNAL_H

#include <jansson.h>

#include "bn/safetensors.h"
#include "import.h"

/* The state_dict field a key ends with; F_OTHER: none of a BatchNorm layer's. */
enum field { F_WEIGHT, F_BIAS, F_MEAN, F_VAR, F_NBT, F_OTHER };

/* One key of the body and where its value is. */
struct import_item {
	const char *key;
	size_t plen;                  /* bytes of the group prefix: the key up to its last '.' */
	enum field field;
	json_t *j;                    /* JSON: the value */
	const struct bn_st_entry *st; /* safetensors: the tensor */
};

/* What the query and the wrapped JSON body ask for. */
struct import_options {
	enum bnd_import_mode mode;
	double eps, momentum;
	bool eps_set, momentum_set, cumulative;
	json_t *layers;               /* per-layer overrides, or NULL */
	const char *prefix;           /* put before every layer's name */
	size_t max_layers, max_features;
};

/* Fill e (code, printf-formatted detail) and return -EINVAL. */
int import_invalid(struct bn_error *e, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* An item for key: its group prefix's length and its field. */
void import_item_init(struct import_item *it, const char *key);

/* eps and/or momentum from obj (the body's top level or a "layers" entry); where names it. */
int import_read_rates(json_t *obj, const char *where, double *eps, bool *eps_set,
		double *momentum, bool *cumulative, bool *momentum_set, struct bn_error *e);

/* Group the items (sorted here, in place) into im's layers. -errno with e naming the key. */
int import_build(struct import_item *items, size_t n, const struct import_options *o, struct bnd_import *im,
		struct bn_error *e);

#endif
