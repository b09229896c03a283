/*
 * codec_ops.c: summary, stats and backward bodies (codec_ops.h).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_ops.h"

/* The end of the JSON string starting at p (on its quote), or NULL. */
static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* The end of the JSON value at p, brackets matched (not otherwise checked), or NULL. */
static const char *skip_value(const char *p, const char *end)
{
	size_t depth = 0;

	while (p < end) {
		char c = *p;

		if (c == '"') {
			p = skip_string(p, end);
			if (!p || depth == 0)
				return p;
			continue;
		}
		if (c == '[' || c == '{') {
			depth++;
		} else if (c == ']' || c == '}') {
			if (depth == 0)
				return p;
			if (--depth == 0)
				return p + 1;
		} else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
			return p;
		}
		p++;
	}
	return depth == 0 ? p : NULL;
}

struct member {
	const char *key, *value;
	size_t key_len, value_len;
};

/*
 * The top-level members of a JSON object body, up to max of them, into m[].
 * Returns how many, -EBADMSG when the body is not an object of that shape,
 * -E2BIG past max.
 */
static int members(const char *body, size_t len, struct member *m, size_t max)
{
	const char *p = body, *end = body + len, *q;
	size_t n = 0;

	p = skip_ws(p, end);
	if (p >= end || *p++ != '{')
		return -EBADMSG;
	p = skip_ws(p, end);
	if (p < end && *p == '}')
		return skip_ws(p + 1, end) == end ? 0 : -EBADMSG;
	for (;;) {
		if (p >= end || *p != '"' || !(q = skip_string(p, end)))
			return -EBADMSG;
		if (n == max)
			return -E2BIG;
		m[n] = (struct member){ .key = p + 1, .key_len = (size_t)(q - p - 2) };
		p = skip_ws(q, end);
		if (p >= end || *p++ != ':')
			return -EBADMSG;
		p = skip_ws(p, end);
		q = skip_value(p, end);
		if (!q || q == p)
			return -EBADMSG;
		m[n].value = p;
		m[n++].value_len = (size_t)(q - p);
		p = skip_ws(q, end);
		if (p < end && *p == ',') {
			p = skip_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}' && skip_ws(p + 1, end) == end)
			return (int)n;
		return -EBADMSG;
	}
}

static bool key_is(const struct member *m, const char *key)
{
	return m->key_len == strlen(key) && !memcmp(m->key, key, m->key_len);
}

bool bnd_body_first_key_is(const char *body, size_t len, const char *key)
{
	const char *p = skip_ws(body, body + len), *end = body + len, *q;
	size_t n = strlen(key);

	if (p >= end || *p++ != '{')
		return false;
	p = skip_ws(p, end);
	if (p >= end || *p != '"' || !(q = skip_string(p, end)))
		return false;
	return (size_t)(q - p - 2) == n && !memcmp(p + 1, key, n);
}

size_t bnd_stats_parse_max(size_t len)
{
	return (len < BND_STATS_BODY_MAX ? len : BND_STATS_BODY_MAX) * 36 + 4096;
}

size_t bnd_backward_parse_max(size_t len)
{
	return len + (len / 2 + 2) * sizeof(float) + 64;
}

/* Parse body as a JSON object tree (at most BND_STATS_BODY_MAX bytes). */
static int load_object(const char *body, size_t len, json_t **ret, struct bn_error *err)
{
	json_error_t jerr;
	json_t *root;

	if (len > BND_STATS_BODY_MAX) {
		bn_error_set(err, BN_E_TOO_LARGE, "a summary or stats body is at most %zu bytes, got %zu",
				BND_STATS_BODY_MAX, len);
		return -E2BIG;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		bool overflow = json_error_code(&jerr) == json_error_numeric_overflow;

		bn_error_set(err, overflow ? BN_E_OUT_OF_RANGE : BN_E_INVALID_JSON, "%s: %s (line %d, column %d)",
				overflow ? "a number is beyond double" : "the body is not valid JSON",
				jerr.text, jerr.line, jerr.column);
		return overflow ? -EINVAL : -EBADMSG;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		bn_error_set(err, BN_E_WRONG_TYPE, "the body must be a JSON object");
		return -EINVAL;
	}
	*ret = root;
	return 0;
}

/* num_features doubles of a JSON array (var: each >= 0). */
static int read_doubles(const json_t *a, const char *where, const char *key, size_t n, bool var,
		double *out, struct bn_error *err)
{
	if (!json_is_array(a) || json_array_size(a) != n) {
		bn_error_set(err, json_is_array(a) ? BN_E_WRONG_CHANNELS : BN_E_WRONG_TYPE,
				"%s%s: expected an array of %zu numbers (num_features), got %s%zu", where, key, n,
				json_is_array(a) ? "" : "no array ", json_is_array(a) ? json_array_size(a) : 0);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(a, i);
		double d = json_number_value(v);

		if (!json_is_number(v) || !isfinite(d) || (var && d < 0)) {
			bn_error_set(err, BN_E_INVALID_STATS, "%s%s[%zu]: expected a finite number%s", where, key, i,
					var ? " >= 0 (a biased variance)" : "");
			return -EINVAL;
		}
		out[i] = d;
	}
	return 0;
}

/* One {"count", "mean", "var"} object; where prefixes the field names in details. */
static int read_summary(const json_t *o, const char *where, size_t n, int64_t min_count,
		int64_t *count, double *mean, double *var, struct bn_error *err)
{
	const char *key;
	json_t *v;
	int rc;

	if (!json_is_object(o)) {
		bn_error_set(err, BN_E_WRONG_TYPE, "%s: expected an object {\"count\", \"mean\", \"var\"}", where);
		return -EINVAL;
	}
	json_object_foreach((json_t *)o, key, v) {
		if (strcmp(key, "count") && strcmp(key, "mean") && strcmp(key, "var")) {
			bn_error_set(err, BN_E_UNKNOWN_KEY, "%sunknown key \"%.64s\"; expected count, mean, var",
					where, key);
			return -EINVAL;
		}
	}
	v = json_object_get(o, "count");
	if (!json_is_integer(v) || json_integer_value(v) < min_count ||
			json_integer_value(v) > BN_MAX_COUNT) {
		bn_error_set(err, v ? BN_E_INVALID_STATS : BN_E_MISSING_INPUT, "%scount: expected an integer "
				"from %lld to 2^53 (values per channel)", where, (long long)min_count);
		return -EINVAL;
	}
	*count = json_integer_value(v);
	rc = read_doubles(json_object_get(o, "mean"), where, "mean", n, false, mean, err);
	return rc < 0 ? rc : read_doubles(json_object_get(o, "var"), where, "var", n, true, var, err);
}

int bnd_summary_parse(const char *body, size_t len, size_t num_features, int64_t *ret_count,
		double *mean, double *var, struct bn_error *err)
{
	double *t = malloc(2 * num_features * sizeof(*t));
	json_t *root = NULL;
	int64_t count;
	int rc;

	if (!t) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory");
		return -ENOMEM;
	}
	rc = load_object(body, len, &root, err);
	if (rc == 0)
		rc = read_summary(root, "", num_features, 2, &count, t, t + num_features, err);
	if (rc == 0) {
		*ret_count = count;
		memcpy(mean, t, num_features * sizeof(*t));
		memcpy(var, t + num_features, num_features * sizeof(*t));
	}
	json_decref(root);
	free(t);
	return rc;
}

void bnd_workers_free(struct bnd_workers *w)
{
	free(w->w);
	free(w->values);
	*w = (struct bnd_workers){ 0 };
}

/* The "stats" array into w, allocated here. */
static int read_workers(const json_t *a, size_t C, struct bnd_workers *w, struct bn_error *err)
{
	size_t n = json_array_size(a);
	char where[48];

	if (!json_is_array(a) || n < 1 || n > BND_MAX_WORKERS) {
		bn_error_set(err, json_is_array(a) && n ? BN_E_TOO_LARGE : BN_E_WRONG_TYPE,
				"stats: expected an array of 1 to %d objects {\"count\", \"mean\", \"var\"}, "
				"one per worker", BND_MAX_WORKERS);
		return json_is_array(a) && n ? -E2BIG : -EINVAL;
	}
	w->n = n;
	w->w = calloc(n, sizeof(*w->w));
	w->values = malloc(2 * C * n * sizeof(double));
	if (!w->w || !w->values) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory for %zu workers", n);
		return -ENOMEM;
	}
	for (size_t k = 0; k < n; k++) {
		double *m = w->values + 2 * C * k;
		int rc;

		snprintf(where, sizeof(where), "stats[%zu].", k);
		w->w[k].mean = m;
		w->w[k].var = m + C;
		rc = read_summary(json_array_get(a, k), where, C, 1, &w->w[k].count, m, m + C, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int bnd_workers_parse(const char *body, size_t len, size_t num_features, struct bnd_workers *ret,
		struct bn_error *err)
{
	struct bnd_workers w = { 0 };
	json_t *root = NULL;
	const char *key;
	json_t *v;
	int rc;

	rc = load_object(body, len, &root, err);
	if (rc < 0)
		return rc;
	json_object_foreach(root, key, v) {
		if (strcmp(key, "stats")) {
			bn_error_set(err, BN_E_UNKNOWN_KEY, "unknown key \"%.64s\"; a train body is "
					"{\"input\": T} or {\"stats\": [...]}", key);
			rc = -EINVAL;
			goto out;
		}
	}
	rc = read_workers(json_object_get(root, "stats"), num_features, &w, err);
out:
	json_decref(root);
	if (rc < 0)
		bnd_workers_free(&w);
	else
		*ret = w;
	return rc;
}

/* One tensor member, read by the library's reader as {"input": value}. */
static int read_tensor(const struct member *m, const char *name, size_t max, struct bn_tensor *t,
		enum bn_tensor_form *form, struct bn_error *err)
{
	static const char pre[] = "{\"input\": ";
	size_t len = sizeof(pre) - 1 + m->value_len + 1;
	char *buf = malloc(len + 1);
	int rc;

	if (!buf) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory reading %s", name);
		return -ENOMEM;
	}
	memcpy(buf, pre, sizeof(pre) - 1);
	memcpy(buf + sizeof(pre) - 1, m->value, m->value_len);
	memcpy(buf + len - 1, "}", 2);
	rc = bn_json_input_parse(buf, len, max, t, form, err);
	free(buf);
	if (rc < 0 && err && strcmp(name, "input") && !strncmp(err->detail, "input", 5)) {
		char d[BN_ERROR_DETAIL_MAX];

		snprintf(d, sizeof(d), "%s%s", name, err->detail + 5);
		snprintf(err->detail, sizeof(err->detail), "%s", d);
	}
	return rc;
}

/* Which of input, grad_output and mode each member is; -EINVAL for another or a repeat. */
static int backward_members(const struct member *m, int n, const struct member *got[3],
		struct bn_error *err)
{
	static const char *const keys[3] = { "input", "grad_output", "mode" };

	for (int i = 0; i < n; i++) {
		int k = 0;

		while (k < 3 && !key_is(&m[i], keys[k]))
			k++;
		if (k == 3 || got[k]) {
			bn_error_set(err, BN_E_UNKNOWN_KEY, "%s key \"%.*s\"; expected input, grad_output, mode",
					k == 3 ? "unknown" : "duplicate", m[i].key_len > 64 ? 64 : (int)m[i].key_len,
					m[i].key);
			return -EINVAL;
		}
		got[k] = &m[i];
	}
	if (!got[0] || !got[1]) {
		bn_error_set(err, BN_E_MISSING_INPUT, "missing \"%s\": a backward body is "
				"{\"input\": T, \"grad_output\": T, \"mode\": \"train\" | \"eval\"}",
				got[0] ? "grad_output" : "input");
		return -EINVAL;
	}
	return 0;
}

int bnd_backward_parse(const char *body, size_t len, size_t max_elements, struct bn_tensor *x,
		struct bn_tensor *dy, enum bn_tensor_form *form, bool *train, struct bn_error *err)
{
	const struct member *got[3] = { NULL, NULL, NULL };
	struct bn_tensor a = { 0 }, b = { 0 };
	enum bn_tensor_form fa, fb;
	struct member m[4];
	bool is_train = true;
	int n, rc;

	n = members(body, len, m, 4);
	if (n < 0) {
		bn_error_set(err, n == -E2BIG ? BN_E_UNKNOWN_KEY : BN_E_INVALID_JSON, n == -E2BIG ?
				"too many keys; expected input, grad_output, mode" :
				"the body is not a valid JSON object");
		return n == -E2BIG ? -EINVAL : -EBADMSG;
	}
	rc = backward_members(m, n, got, err);
	if (rc < 0)
		return rc;
	if (got[2]) {
		const struct member *md = got[2];

		is_train = md->value_len == 7 && !memcmp(md->value, "\"train\"", 7);
		if (!is_train && !(md->value_len == 6 && !memcmp(md->value, "\"eval\"", 6))) {
			bn_error_set(err, BN_E_WRONG_TYPE, "mode: expected \"train\" or \"eval\"");
			return -EINVAL;
		}
	}
	rc = read_tensor(got[0], "input", max_elements, &a, &fa, err);
	if (rc == 0)
		rc = read_tensor(got[1], "grad_output", max_elements, &b, &fb, err);
	if (rc < 0) {
		bn_tensor_finish(&a);
		return rc;
	}
	*x = a;
	*dy = b;
	*form = fa;
	*train = is_train;
	return 0;
}
