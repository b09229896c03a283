/*
 * import.h: a model's state_dict, as POST /v1/import receives it, read into
 * the BatchNorm layers it holds.
 *
 * The body is JSON (a bare state_dict {"layer1.0.bn1.running_mean": [...]},
 * or {"state_dict": {...}, "mode", "eps", "momentum", "layers"}) or
 * safetensors. Keys group by the prefix before their last '.'; a group with
 * running_mean and running_var, or one named in "layers", is a layer named
 * by the query's prefix plus the group's. Nothing here touches the store or
 * the registry: routes/models.c applies the result in one transaction.
 */
#ifndef BND_IMPORT_H
#define BND_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn/batchnorm.h"
#include "bn/error.h"
#include "http.h"

#define BND_IMPORT_KEYS_MAX   100000     /* keys (tensors) in one import */
#define BND_IMPORT_HEADER_MAX (8u << 20) /* bytes of a safetensors header */

enum bnd_import_mode { BND_IMPORT_CREATE, BND_IMPORT_REPLACE, BND_IMPORT_UPDATE };

struct bnd_import_layer {
	char name[BND_NAME_MAX + 1];
	char key[BND_NAME_MAX + 32];  /* one of its keys, for messages */
	struct bn_config cfg;         /* inferred: num_features, affine, tracking; eps/momentum if set */
	bool eps_set, momentum_set;
	bool has_weight, has_bias, has_mean, has_var, has_nbt;
	float *weight, *bias, *mean, *var; /* owned; NULL when absent */
	int64_t nbt;
};

struct bnd_import {
	enum bnd_import_mode mode;
	struct bnd_import_layer *layers; /* sorted by name, no two alike */
	size_t count;
	size_t ignored;                  /* keys that belong to no layer */
};

/*
 * Read req's body and query into *ret. On error, -errno with e naming the
 * key at fault; *ret is written only on success (free with bnd_import_finish).
 */
int bnd_import_parse(const struct bnd_request *req, struct bnd_import *ret, struct bn_error *e);

void bnd_import_finish(struct bnd_import *im);

/* The name of a mode ("create"). */
const char *bnd_import_mode_name(enum bnd_import_mode m);

#endif
