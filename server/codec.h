/*
 * codec.h: a layer's config and state as JSON, both ways.
 *
 * Bodies are read with the library's strict JSON scanner (bn/json_scan.h):
 * state values are rounded to float32 from their text by the code that
 * reads tensor values, a number is never refused for how it is written
 * (100000000000000000000 is 1e20, judged by the field's range), and a
 * duplicate key is refused as in a tensor body. Answers are written with
 * bn_buf and bn_json_* so float32 values print shortest and exact. Errors
 * fill a struct bn_error naming the field: -EBADMSG for JSON that does not
 * parse, -ENOMEM, -EINVAL for anything else.
 */
#ifndef BND_CODEC_H
#define BND_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "bn/batchnorm.h"
#include "bn/buf.h"
#include "bn/error.h"
#include "registry.h"

/* Parse a PUT /v1/layers/{name} body into *ret (defaults filled in, checked). */
int bnd_config_parse(const char *body, size_t len, size_t max_features,
		struct bn_config *ret, struct bn_error *err);

/* Apply a PATCH body (eps and/or momentum) to *cfg, which is left alone on error. */
int bnd_config_patch(const char *body, size_t len, struct bn_config *cfg, struct bn_error *err);

/*
 * Load a PUT /state body (any subset of the keys the layer has) into *state,
 * which is changed only when the whole body is valid.
 */
int bnd_state_parse(const char *body, size_t len, const struct bn_config *cfg,
		struct bn_state *state, struct bn_error *err);

/* Whether two configs are the same (a default written out equals it left out). */
bool bnd_config_equal(const struct bn_config *a, const struct bn_config *b);

/* Append a double the shortest way that reads back the same ("1e-05", "0.1"). */
void bnd_double_write(struct bn_buf *out, double v);

/* Append a Unix time in ms as a quoted RFC 3339 UTC time: "2026-11-23T10:00:05.120Z". */
void bnd_time_write(struct bn_buf *out, int64_t ms);

/* Append {"num_features": ..., "eps": ..., ...}. */
void bnd_config_write(struct bn_buf *out, const struct bn_config *cfg);

/* Append the state_dict object, with only the keys the layer has. */
void bnd_state_write(struct bn_buf *out, const struct bn_config *cfg, const struct bn_state *st);

/* Append the whole layer as GET /v1/layers/{name} shows it. */
void bnd_layer_write(struct bn_buf *out, const char *name, const struct bnd_snapshot *snap);

#endif
