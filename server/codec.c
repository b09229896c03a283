/*
 * codec.c: configs and states to and from JSON (codec.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bn/json.h"
#include "codec.h"
#include "errors.h"

#define CONFIG_KEYS "num_features, eps, momentum, affine, track_running_stats"

/* Parse body as any JSON value that must be an object. */
static int load_object(const char *body, size_t len, const char *what, json_t **ret, struct bn_error *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);

	if (!root && json_error_code(&jerr) == json_error_numeric_overflow) {
		/* Well-formed JSON whose number no field here could hold: a value error, not a syntax one. */
		bn_error_set(err, BN_E_OUT_OF_RANGE, "%s (line %d, column %d): no field takes a number that large",
			jerr.text, jerr.line, jerr.column);
		return -EINVAL;
	}
	if (!root) {
		bn_error_set(err, BN_E_INVALID_JSON, "the body is not valid JSON: %s (line %d, column %d)",
			jerr.text, jerr.line, jerr.column);
		return -EBADMSG;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		bn_error_set(err, BN_E_WRONG_TYPE, "%s must be a JSON object", what);
		return -EINVAL;
	}
	*ret = root;
	return 0;
}

/* eps or momentum from a config or PATCH body. */
static int set_rate(struct bn_config *cfg, const char *key, json_t *v, struct bn_error *err)
{
	if (strcmp(key, "momentum") == 0 && json_is_null(v)) {
		cfg->cumulative = true;
		cfg->momentum = 0.0;
		return 0;
	}
	if (!json_is_number(v)) {
		bn_error_set(err, BN_E_WRONG_TYPE, "%s must be a number%s", key,
			strcmp(key, "momentum") == 0 ? " or null" : "");
		return -EINVAL;
	}
	if (strcmp(key, "eps") == 0) {
		cfg->eps = json_number_value(v);
	} else {
		cfg->momentum = json_number_value(v);
		cfg->cumulative = false;
	}
	return 0;
}

static int set_config_key(struct bn_config *cfg, const char *key, json_t *v, bool *has_features,
		struct bn_error *err)
{
	if (strcmp(key, "num_features") == 0) {
		if (!json_is_integer(v)) {
			bn_error_set(err, BN_E_WRONG_TYPE, "num_features must be an integer");
			return -EINVAL;
		}
		if (json_integer_value(v) < 1) {
			bn_error_set(err, BN_E_INVALID_CONFIG, "num_features must be at least 1, got %" JSON_INTEGER_FORMAT,
				json_integer_value(v));
			return -EINVAL;
		}
		cfg->num_features = (uint64_t)json_integer_value(v) > SIZE_MAX ? SIZE_MAX : (size_t)json_integer_value(v);
		*has_features = true;
		return 0;
	}
	if (strcmp(key, "eps") == 0 || strcmp(key, "momentum") == 0)
		return set_rate(cfg, key, v, err);
	if (strcmp(key, "affine") == 0 || strcmp(key, "track_running_stats") == 0) {
		if (!json_is_boolean(v)) {
			bn_error_set(err, BN_E_WRONG_TYPE, "%s must be true or false", key);
			return -EINVAL;
		}
		*(key[0] == 'a' ? &cfg->affine : &cfg->track_running_stats) = json_is_true(v);
		return 0;
	}
	bn_error_set(err, BN_E_UNKNOWN_KEY, "unknown key \"%.64s\" in the config; the keys are " CONFIG_KEYS, key);
	return -EINVAL;
}

int bnd_config_parse(const char *body, size_t len, size_t max_features,
		struct bn_config *ret, struct bn_error *err)
{
	struct bn_config cfg;
	bool has_features = false;
	const char *key;
	json_t *root, *v;
	int rc;

	rc = load_object(body, len, "the config", &root, err);
	if (rc < 0)
		return rc;
	bn_config_default(&cfg, 1);
	json_object_foreach(root, key, v) {
		rc = set_config_key(&cfg, key, v, &has_features, err);
		if (rc < 0)
			goto out;
	}
	if (!has_features) {
		bn_error_set(err, BN_E_INVALID_CONFIG, "num_features is required");
		rc = -EINVAL;
		goto out;
	}
	rc = bn_config_check(&cfg, max_features, err);
	if (rc == 0)
		*ret = cfg;
out:
	json_decref(root);
	return rc;
}

int bnd_config_patch(const char *body, size_t len, struct bn_config *cfg, struct bn_error *err)
{
	struct bn_config next = *cfg;
	const char *key;
	json_t *root, *v;
	int rc;

	rc = load_object(body, len, "the PATCH body", &root, err);
	if (rc < 0)
		return rc;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "eps") == 0 || strcmp(key, "momentum") == 0) {
			rc = set_rate(&next, key, v, err);
		} else if (strcmp(key, "num_features") == 0 || strcmp(key, "affine") == 0 ||
			   strcmp(key, "track_running_stats") == 0) {
			bn_error_set(err, BN_E_INVALID_CONFIG, "%s cannot be changed; only eps and momentum can", key);
			rc = -EINVAL;
		} else {
			bn_error_set(err, BN_E_UNKNOWN_KEY, "unknown key \"%.64s\"; only eps and momentum can be changed", key);
			rc = -EINVAL;
		}
		if (rc < 0)
			break;
	}
	json_decref(root);
	if (rc == 0)
		rc = bn_config_check(&next, next.num_features, err);
	if (rc == 0)
		*cfg = next;
	return rc;
}

/* Read a JSON array of num_features float32 into v (all or nothing). */
static int read_floats(json_t *a, const char *key, size_t n, bool non_negative, float *v,
		struct bn_error *err)
{
	size_t i;
	json_t *x;

	if (!json_is_array(a)) {
		bn_error_set(err, BN_E_WRONG_TYPE, "%s must be an array of numbers", key);
		return -EINVAL;
	}
	if (json_array_size(a) != n) {
		bn_error_set(err, BND_E_INVALID_STATE, "%s has %zu values; the layer has %zu features (num_features)",
			key, json_array_size(a), n);
		return -EINVAL;
	}
	json_array_foreach(a, i, x) {
		double d;

		if (!json_is_number(x)) {
			bn_error_set(err, BN_E_WRONG_TYPE, "%s[%zu] must be a number", key, i);
			return -EINVAL;
		}
		d = json_number_value(x);
		if (!isfinite(d) || !isfinite((float)d)) {
			bn_error_set(err, BN_E_OUT_OF_RANGE, "%s[%zu]: %g is beyond float32", key, i, d);
			return -EINVAL;
		}
		if (non_negative && d < 0) {
			bn_error_set(err, BND_E_INVALID_STATE, "%s[%zu] must be >= 0, got %g", key, i, d);
			return -EINVAL;
		}
		v[i] = (float)d;
	}
	return 0;
}

static int read_batches(json_t *v, int64_t *ret, struct bn_error *err)
{
	json_int_t n;

	if (!json_is_integer(v)) {
		bn_error_set(err, BN_E_WRONG_TYPE, "num_batches_tracked must be an integer literal (3, not 3.0)");
		return -EINVAL;
	}
	n = json_integer_value(v);
	if (n < 0 || n > BN_MAX_BATCHES_TRACKED) {
		bn_error_set(err, BND_E_INVALID_STATE, "num_batches_tracked must be from 0 to 2^53, got %"
			JSON_INTEGER_FORMAT, n);
		return -EINVAL;
	}
	*ret = n;
	return 0;
}

/* The array of next that key names, or NULL when the layer does not have it. */
static float *state_array(struct bn_state *next, const struct bn_config *cfg, const char *key)
{
	if (cfg->affine && strcmp(key, "weight") == 0)
		return next->weight;
	if (cfg->affine && strcmp(key, "bias") == 0)
		return next->bias;
	if (cfg->track_running_stats && strcmp(key, "running_mean") == 0)
		return next->running_mean;
	if (cfg->track_running_stats && strcmp(key, "running_var") == 0)
		return next->running_var;
	return NULL;
}

int bnd_state_parse(const char *body, size_t len, const struct bn_config *cfg,
		struct bn_state *state, struct bn_error *err)
{
	struct bn_state next;
	const char *key;
	json_t *root, *v;
	int rc;

	rc = load_object(body, len, "the state", &root, err);
	if (rc < 0)
		return rc;
	if (bn_state_copy(&next, state) < 0) {
		json_decref(root);
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory");
		return -ENOMEM;
	}
	json_object_foreach(root, key, v) {
		float *a = state_array(&next, cfg, key);

		if (a) {
			rc = read_floats(v, key, cfg->num_features, strcmp(key, "running_var") == 0, a, err);
		} else if (cfg->track_running_stats && strcmp(key, "num_batches_tracked") == 0) {
			rc = read_batches(v, &next.num_batches_tracked, err);
		} else {
			bn_error_set(err, BN_E_UNKNOWN_KEY, "this layer has no \"%.64s\"; it has %s%s", key,
				cfg->affine ? "weight, bias" : "",
				!cfg->track_running_stats ? "" : cfg->affine ?
				", running_mean, running_var, num_batches_tracked" :
				"running_mean, running_var, num_batches_tracked");
			rc = -EINVAL;
		}
		if (rc < 0)
			break;
	}
	json_decref(root);
	if (rc < 0) {
		bn_state_finish(&next);
		return rc;
	}
	bn_state_finish(state);
	*state = next;
	return 0;
}

bool bnd_config_equal(const struct bn_config *a, const struct bn_config *b)
{
	return a->num_features == b->num_features && a->eps == b->eps &&
		a->cumulative == b->cumulative && (a->cumulative || a->momentum == b->momentum) &&
		a->affine == b->affine && a->track_running_stats == b->track_running_stats;
}

void bnd_double_write(struct bn_buf *out, double v)
{
	char s[40];

	for (int p = 1; p <= 17; p++) {
		snprintf(s, sizeof(s), "%.*g", p, v);
		if (strtod(s, NULL) == v)
			break;
	}
	bn_buf_puts(out, s);
	if (!strpbrk(s, ".eni"))
		bn_buf_puts(out, ".0");
}

void bnd_time_write(struct bn_buf *out, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char s[40];

	gmtime_r(&secs, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	bn_buf_printf(out, "\"%s.%03dZ\"", s, (int)(ms % 1000));
}

void bnd_config_write(struct bn_buf *out, const struct bn_config *cfg)
{
	bn_buf_printf(out, "{\"num_features\": %zu, \"eps\": ", cfg->num_features);
	bnd_double_write(out, cfg->eps);
	bn_buf_puts(out, ", \"momentum\": ");
	if (cfg->cumulative)
		bn_buf_puts(out, "null");
	else
		bnd_double_write(out, cfg->momentum);
	bn_buf_printf(out, ", \"affine\": %s, \"track_running_stats\": %s}",
		cfg->affine ? "true" : "false", cfg->track_running_stats ? "true" : "false");
}

void bnd_state_write(struct bn_buf *out, const struct bn_config *cfg, const struct bn_state *st)
{
	size_t n = cfg->num_features;

	bn_buf_puts(out, "{");
	if (cfg->affine) {
		bn_buf_puts(out, "\"weight\": ");
		bn_json_floats_write(out, st->weight, n);
		bn_buf_puts(out, ", \"bias\": ");
		bn_json_floats_write(out, st->bias, n);
	}
	if (cfg->track_running_stats) {
		bn_buf_puts(out, cfg->affine ? ", \"running_mean\": " : "\"running_mean\": ");
		bn_json_floats_write(out, st->running_mean, n);
		bn_buf_puts(out, ", \"running_var\": ");
		bn_json_floats_write(out, st->running_var, n);
		bn_buf_printf(out, ", \"num_batches_tracked\": %" PRId64, st->num_batches_tracked);
	}
	bn_buf_puts(out, "}");
}

void bnd_layer_write(struct bn_buf *out, const char *name, const struct bnd_snapshot *snap)
{
	bn_buf_puts(out, "{\"name\": ");
	bn_json_string_write(out, name);
	bn_buf_puts(out, ", \"config\": ");
	bnd_config_write(out, &snap->cfg);
	bn_buf_puts(out, ", \"state\": ");
	bnd_state_write(out, &snap->cfg, &snap->state);
	bn_buf_puts(out, ", \"created_at\": ");
	bnd_time_write(out, snap->created_ms);
	bn_buf_puts(out, ", \"updated_at\": ");
	bnd_time_write(out, snap->updated_ms);
	bn_buf_puts(out, "}");
}
