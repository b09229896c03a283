/*
 * codec_read.c: config, PATCH and state bodies read into a layer (codec.h).
 *
 * The bodies are scanned with the library's strict JSON scanner
 * (bn/json_scan.h), the one under the tensor reader, so a state value is
 * rounded to float32 from its decimal text by exactly the code that rounds
 * tensor values, and no number is refused for being written as a long
 * integer (100000000000000000000 is 1e20). Integer fields (num_features,
 * num_batches_tracked) are read from the number's text, so they take only
 * integer literals and any size is judged by the field's range. eps and
 * momentum are doubles, as PyTorch keeps them, read with glibc's strtod,
 * which rounds correctly to double.
 *
 * One struct body follows the scan: the body object (depth 1), a field's
 * value, and for a state array its elements (depth 2). The first error is
 * kept and the rest ignored, but a state array's bad element is told only
 * after its length is known, since a wrong length is the bigger mistake.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/json_scan.h"
#include "codec.h"
#include "errors.h"

#define CONFIG_KEYS "num_features, eps, momentum, affine, track_running_stats"

/* Beyond any --max-features that memory allows, and what integer_value can saturate at. */
#define MAX_FEATURES_READ ((uint64_t)1 << 59)

enum mode { M_CONFIG, M_PATCH, M_STATE };

enum field {
	F_NONE, F_NUM_FEATURES, F_EPS, F_MOMENTUM, F_AFFINE, F_TRACK,
	F_WEIGHT, F_BIAS, F_RUNNING_MEAN, F_RUNNING_VAR, F_BATCHES,
};

static const char *const field_names[] = {
	"", "num_features", "eps", "momentum", "affine", "track_running_stats",
	"weight", "bias", "running_mean", "running_var", "num_batches_tracked",
};

struct body {
	enum mode mode;
	const char *what;              /* "the config", for the body's own type */
	const struct bn_config *layer; /* M_STATE: the layer's config */
	size_t max_features;           /* M_CONFIG: the server's cap */
	struct bn_config cfg;          /* M_CONFIG, M_PATCH: being built */
	bool has_features;
	struct bn_state *next;         /* M_STATE: a copy being filled */
	unsigned depth;                /* open containers; the body object is 1 */
	unsigned seen;                 /* a bit per field met, for duplicates */
	enum field field;              /* the current key's field */
	float *arr;                    /* the state array being read */
	size_t arr_i;
	bool arr_bad;                  /* its first bad element, told at its close */
	struct bn_error arr_err;
	bool failed;
	int rc;
	struct bn_error err;
};

__attribute__((format(printf, 4, 5)))
static void fail(struct body *B, int rc, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (B->failed)
		return;
	B->failed = true;
	B->rc = rc;
	B->err.code = code;
	va_start(ap, fmt);
	vsnprintf(B->err.detail, sizeof(B->err.detail), fmt, ap);
	va_end(ap);
}

/* Up to 40 bytes of a number's text, for a detail. */
#define NUM_FMT "%.*s%s"
#define NUM_ARGS(n) (n)->len > 40 ? 40 : (int)(n)->len, (n)->text, (n)->len > 40 ? "..." : ""

static bool is_integer_literal(const struct bn_json_number *num)
{
	return !memchr(num->text, '.', num->len) && !memchr(num->text, 'e', num->len) &&
		!memchr(num->text, 'E', num->len);
}

/*
 * The magnitude of an integer literal, saturated at limit + 1 (limit below
 * 2^60) so that any size compares right; *ret_neg says it has a minus sign
 * and is not zero.
 */
static uint64_t integer_value(const struct bn_json_number *num, uint64_t limit, bool *ret_neg)
{
	const char *p = num->text, *end = num->text + num->len;
	uint64_t v = 0;

	if (p < end && *p == '-')
		p++;
	/* While v <= limit < 2^60, v * 10 + 9 cannot wrap. */
	for (; p < end && v <= limit; p++)
		v = v * 10 + (uint64_t)(*p - '0');
	if (v > limit)
		v = limit + 1;
	*ret_neg = num->text[0] == '-' && v != 0;
	return v;
}

static locale_t c_locale;
static pthread_once_t locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* A JSON number's text as the nearest double (glibc's strtod rounds correctly); +-inf beyond. */
static int double_value(const struct bn_json_number *num, double *ret)
{
	char stack[64], *copy = stack;

	pthread_once(&locale_once, make_c_locale);
	if (!c_locale)
		return -ENOMEM;
	if (num->len >= sizeof(stack)) {
		copy = malloc(num->len + 1);
		if (!copy)
			return -ENOMEM;
	}
	memcpy(copy, num->text, num->len);
	copy[num->len] = '\0';
	*ret = strtod_l(copy, NULL, c_locale);
	if (copy != stack)
		free(copy);
	return 0;
}

/* Whether a number's text is some zero: no nonzero digit before its exponent. */
static bool is_zero_text(const struct bn_json_number *num)
{
	for (size_t i = 0; i < num->len && num->text[i] != 'e' && num->text[i] != 'E'; i++)
		if (num->text[i] >= '1' && num->text[i] <= '9')
			return false;
	return true;
}

/* Which field a key names in this body, or F_NONE after failing with why not. */
static enum field key_field(struct body *B, const char *key, size_t len, bool cut)
{
	enum field f = F_NONE;

	for (size_t i = 1; !cut && i < sizeof(field_names) / sizeof(field_names[0]); i++)
		if (strlen(field_names[i]) == len && memcmp(field_names[i], key, len) == 0)
			f = (enum field)i;
	if (B->mode == M_CONFIG && f >= F_NUM_FEATURES && f <= F_TRACK)
		return f;
	if (B->mode == M_PATCH && (f == F_EPS || f == F_MOMENTUM))
		return f;
	if (B->mode == M_PATCH && f != F_NONE && f <= F_TRACK) {
		fail(B, -EINVAL, BN_E_INVALID_CONFIG, "%s cannot be changed; only eps and momentum can",
			field_names[f]);
		return F_NONE;
	}
	if (B->mode == M_STATE && ((B->layer->affine && (f == F_WEIGHT || f == F_BIAS)) ||
			(B->layer->track_running_stats && f >= F_RUNNING_MEAN)))
		return f;
	if (B->mode == M_CONFIG)
		fail(B, -EINVAL, BN_E_UNKNOWN_KEY, "unknown key \"%.*s%s\" in the config; the keys are "
			CONFIG_KEYS, (int)len, key, cut ? "..." : "");
	else if (B->mode == M_PATCH)
		fail(B, -EINVAL, BN_E_UNKNOWN_KEY, "unknown key \"%.*s%s\"; only eps and momentum can be changed",
			(int)len, key, cut ? "..." : "");
	else
		fail(B, -EINVAL, BN_E_UNKNOWN_KEY, "this layer has no \"%.*s%s\"; it has %s%s",
			(int)len, key, cut ? "..." : "", B->layer->affine ? "weight, bias" : "",
			!B->layer->track_running_stats ? "" : B->layer->affine ?
			", running_mean, running_var, num_batches_tracked" :
			"running_mean, running_var, num_batches_tracked");
	return F_NONE;
}

static void body_key(void *ctx, const char *key, size_t len, bool cut)
{
	struct body *B = ctx;
	enum field f;

	if (B->failed || B->depth != 1)
		return;
	f = key_field(B, key, len, cut);
	if (f != F_NONE && (B->seen & 1u << f))
		fail(B, -EINVAL, BN_E_UNKNOWN_KEY, "duplicate key \"%s\"", field_names[f]);
	B->seen |= 1u << f;
	B->field = f;
}

/* eps or momentum, in a config or a PATCH body. */
static void rate_value(struct body *B, enum bn_json_kind kind, const struct bn_json_number *num)
{
	double d;

	if (B->field == F_MOMENTUM && kind == BN_JSON_NULL) {
		B->cfg.cumulative = true;
		B->cfg.momentum = 0.0;
		return;
	}
	if (kind != BN_JSON_NUMBER) {
		fail(B, -EINVAL, BN_E_WRONG_TYPE, "%s must be a number%s", field_names[B->field],
			B->field == F_MOMENTUM ? " or null" : "");
		return;
	}
	if (double_value(num, &d) < 0) {
		fail(B, -ENOMEM, BN_E_NO_MEMORY, "out of memory reading %s", field_names[B->field]);
		return;
	}
	/* Beyond double it is +-inf, and the range check after the scan says what was wanted. */
	if (B->field == F_EPS) {
		B->cfg.eps = d;
	} else {
		B->cfg.momentum = d;
		B->cfg.cumulative = false;
	}
}

static void config_value(struct body *B, enum bn_json_kind kind, const struct bn_json_number *num)
{
	uint64_t v;
	bool neg;

	switch (B->field) {
	case F_NUM_FEATURES:
		if (kind != BN_JSON_NUMBER || !is_integer_literal(num)) {
			fail(B, -EINVAL, BN_E_WRONG_TYPE, "num_features must be an integer");
			return;
		}
		v = integer_value(num, B->max_features, &neg);
		if (neg || v == 0 || v > B->max_features) {
			fail(B, -EINVAL, BN_E_INVALID_CONFIG, "num_features must be an integer from 1 to %zu, got "
				NUM_FMT, B->max_features, NUM_ARGS(num));
			return;
		}
		B->cfg.num_features = (size_t)v;
		B->has_features = true;
		return;
	case F_EPS:
	case F_MOMENTUM:
		rate_value(B, kind, num);
		return;
	case F_AFFINE:
	case F_TRACK:
		if (kind != BN_JSON_TRUE && kind != BN_JSON_FALSE)
			fail(B, -EINVAL, BN_E_WRONG_TYPE, "%s must be true or false", field_names[B->field]);
		else
			*(B->field == F_AFFINE ? &B->cfg.affine : &B->cfg.track_running_stats) =
				kind == BN_JSON_TRUE;
		return;
	default:
		return;
	}
}

static void batches_value(struct body *B, enum bn_json_kind kind, const struct bn_json_number *num)
{
	uint64_t v;
	bool neg;

	if (kind != BN_JSON_NUMBER || !is_integer_literal(num)) {
		fail(B, -EINVAL, BN_E_WRONG_TYPE, "num_batches_tracked must be an integer literal (3, not 3.0)");
		return;
	}
	v = integer_value(num, (uint64_t)BN_MAX_BATCHES_TRACKED, &neg);
	if (neg || v > (uint64_t)BN_MAX_BATCHES_TRACKED) {
		fail(B, -EINVAL, BN_E_OUT_OF_RANGE, "num_batches_tracked must be an integer from 0 to "
			"2^53 (9007199254740992), got " NUM_FMT, NUM_ARGS(num));
		return;
	}
	B->next->num_batches_tracked = (int64_t)v;
}

static void state_value(struct body *B, enum bn_json_kind kind, const struct bn_json_number *num)
{
	float *arrays[] = {
		[F_WEIGHT] = B->next->weight, [F_BIAS] = B->next->bias,
		[F_RUNNING_MEAN] = B->next->running_mean, [F_RUNNING_VAR] = B->next->running_var,
	};

	if (B->field == F_BATCHES) {
		batches_value(B, kind, num);
	} else if (kind != BN_JSON_ARRAY) {
		fail(B, -EINVAL, BN_E_WRONG_TYPE, "%s must be an array of numbers", field_names[B->field]);
	} else {
		B->arr = arrays[B->field];
		B->arr_i = 0;
		B->arr_bad = false;
	}
}

/* An element of the state array B->arr: stored, or its error kept for the close. */
static void element_value(struct body *B, enum bn_json_kind kind, const struct bn_json_number *num)
{
	const char *key = field_names[B->field];
	size_t i = B->arr_i++;

	if (B->arr_bad || i >= B->layer->num_features)
		return;
	if (kind != BN_JSON_NUMBER) {
		bn_error_set(&B->arr_err, BN_E_WRONG_TYPE, "%s[%zu] must be a number", key, i);
	} else if (num->r < 0) {
		bn_error_set(&B->arr_err, BN_E_OUT_OF_RANGE, "%s[%zu]: value " NUM_FMT " is beyond float32",
			key, i, NUM_ARGS(num));
	} else if (B->field == F_RUNNING_VAR && signbit(num->f) && !is_zero_text(num)) {
		/* Judged on the text: -1e-50 is below zero even though it rounds to -0. */
		bn_error_set(&B->arr_err, BND_E_INVALID_STATE, "%s[%zu] must be >= 0, got " NUM_FMT,
			key, i, NUM_ARGS(num));
	} else {
		B->arr[i] = num->f;
		return;
	}
	B->arr_bad = true;
}

static void body_value(void *ctx, enum bn_json_kind kind, const struct bn_json_number *num)
{
	struct body *B = ctx;
	unsigned depth = B->depth;

	if (kind == BN_JSON_OBJECT || kind == BN_JSON_ARRAY)
		B->depth++;
	if (B->failed)
		return;
	if (depth == 0 && kind != BN_JSON_OBJECT)
		fail(B, -EINVAL, BN_E_WRONG_TYPE, "%s must be a JSON object", B->what);
	else if (depth == 1 && B->mode == M_STATE)
		state_value(B, kind, num);
	else if (depth == 1)
		config_value(B, kind, num);
	else if (depth == 2 && B->arr)
		element_value(B, kind, num);
	/* Anything deeper is inside a value already refused. */
}

static void body_close(void *ctx)
{
	struct body *B = ctx;

	if (--B->depth != 1 || B->failed || !B->arr)
		return;
	if (B->arr_i != B->layer->num_features)
		fail(B, -EINVAL, BND_E_INVALID_STATE, "%s has %zu values; the layer has %zu features (num_features)",
			field_names[B->field], B->arr_i, B->layer->num_features);
	else if (B->arr_bad)
		fail(B, -EINVAL, B->arr_err.code, "%s", B->arr_err.detail);
	B->arr = NULL;
}

static const struct bn_json_events body_events = {
	.value = body_value,
	.key = body_key,
	.close = body_close,
};

/* Scan the whole body into B: a syntax error wins over B's first error. */
static int scan(const char *body, size_t len, struct body *B, struct bn_error *err)
{
	int rc = bn_json_scan(body, len, &body_events, B, err);

	if (rc < 0)
		return rc;
	if (B->failed) {
		if (err)
			*err = B->err;
		return B->rc;
	}
	return 0;
}

int bnd_config_parse(const char *body, size_t len, size_t max_features,
		struct bn_config *ret, struct bn_error *err)
{
	struct body B = { .mode = M_CONFIG, .what = "the config",
		.max_features = max_features < MAX_FEATURES_READ ? max_features : MAX_FEATURES_READ };
	int rc;

	bn_config_default(&B.cfg, 1);
	rc = scan(body, len, &B, err);
	if (rc < 0)
		return rc;
	if (!B.has_features) {
		bn_error_set(err, BN_E_INVALID_CONFIG, "num_features is required");
		return -EINVAL;
	}
	rc = bn_config_check(&B.cfg, max_features, err);
	if (rc == 0)
		*ret = B.cfg;
	return rc;
}

int bnd_config_patch(const char *body, size_t len, struct bn_config *cfg, struct bn_error *err)
{
	struct body B = { .mode = M_PATCH, .what = "the PATCH body", .cfg = *cfg };
	int rc;

	rc = scan(body, len, &B, err);
	if (rc == 0)
		rc = bn_config_check(&B.cfg, B.cfg.num_features, err);
	if (rc == 0)
		*cfg = B.cfg;
	return rc;
}

int bnd_state_parse(const char *body, size_t len, const struct bn_config *cfg,
		struct bn_state *state, struct bn_error *err)
{
	struct bn_state next;
	struct body B = { .mode = M_STATE, .what = "the state", .layer = cfg, .next = &next };
	int rc;

	if (bn_state_copy(&next, state) < 0) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory");
		return -ENOMEM;
	}
	rc = scan(body, len, &B, err);
	if (rc < 0) {
		bn_state_finish(&next);
		return rc;
	}
	bn_state_finish(state);
	*state = next;
	return 0;
}
