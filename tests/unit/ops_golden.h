/*
 * ops_golden.h: what test_stats.c and test_backward.c share to read
 * tests/golden/ops.json (written by tests/golden/generate_ops.py) and to
 * keep the worst error of each quantity against PyTorch and against the
 * float64 reference. Header-only: each test includes it once.
 */
#ifndef OPS_GOLDEN_H
#define OPS_GOLDEN_H

#undef NDEBUG
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bn/tensor.h"

/* The worst relative error seen of one quantity, and its bound. */
struct worst {
	const char *what;
	double bound, value;
	long compared;
	int failures;
};

/*
 * Compare n values got[] with want[]; the error of each is relative to the
 * largest |want| of the group (so values near 0 in a channel of large ones
 * are judged on the channel's scale), or to 1e-30 when all are 0.
 */
static inline void worst_check(struct worst *w, const double *got, const double *want, size_t n,
		const char *where)
{
	double scale = 1e-30;

	for (size_t i = 0; i < n; i++)
		scale = fmax(scale, fabs(want[i]));
	for (size_t i = 0; i < n; i++) {
		double e = fabs(got[i] - want[i]) / scale;

		w->compared++;
		if (e > w->value)
			w->value = e;
		if (!(e <= w->bound)) {
			if (w->failures++ < 5)
				fprintf(stderr, "FAIL %s %s[%zu]: got %.17g, want %.17g (relative %.3g > %.3g)\n",
						where, w->what, i, got[i], want[i], e, w->bound);
		}
	}
}

static inline int worst_report(const struct worst *w, size_t n)
{
	int failures = 0;

	for (size_t i = 0; i < n; i++) {
		printf("  %-44s worst relative error %.3g (bound %.3g) over %ld values%s\n", w[i].what,
				w[i].value, w[i].bound, w[i].compared, w[i].failures ? "  FAILED" : "");
		failures += w[i].failures;
	}
	return failures;
}

static inline json_t *golden_load(const char *dir)
{
	char path[4096];
	json_error_t e;
	json_t *j;

	snprintf(path, sizeof(path), "%s/ops.json", dir);
	j = json_load_file(path, 0, &e);
	if (!j)
		fprintf(stderr, "%s: %s (line %d)\n", path, e.text, e.line);
	assert(j);
	return j;
}

/* A JSON array of numbers into a new double array; its length to *n. */
static inline double *golden_doubles(const json_t *a, size_t *n)
{
	size_t len = json_array_size(a);
	double *v = malloc((len ? len : 1) * sizeof(*v));

	assert(v && json_is_array(a));
	for (size_t i = 0; i < len; i++) {
		assert(json_is_number(json_array_get(a, i)));
		v[i] = json_number_value(json_array_get(a, i));
	}
	if (n)
		*n = len;
	return v;
}

/* The same into floats (each value a float32's shortest repr). */
static inline float *golden_floats(const json_t *a, size_t *n)
{
	size_t len;
	double *d = golden_doubles(a, &len);
	float *f = malloc((len ? len : 1) * sizeof(*f));

	assert(f);
	for (size_t i = 0; i < len; i++)
		f[i] = (float)d[i];
	free(d);
	if (n)
		*n = len;
	return f;
}

/* {"shape", "data"} into a new tensor. */
static inline void golden_tensor(const json_t *j, struct bn_tensor *t)
{
	const json_t *shape = json_object_get(j, "shape");
	size_t dims[BN_TENSOR_MAX_RANK], n;
	float *data;

	assert(json_array_size(shape) >= 1 && json_array_size(shape) <= BN_TENSOR_MAX_RANK);
	for (size_t i = 0; i < json_array_size(shape); i++)
		dims[i] = (size_t)json_integer_value(json_array_get(shape, i));
	assert(bn_tensor_init(t, (unsigned)json_array_size(shape), dims, (size_t)1 << 24, NULL) == 0);
	data = golden_floats(json_object_get(j, "data"), &n);
	assert(n == t->count);
	memcpy(t->data, data, n * sizeof(*data));
	free(data);
}

/* floats to doubles, for worst_check. */
static inline double *widen(const float *f, size_t n)
{
	double *d = malloc((n ? n : 1) * sizeof(*d));

	assert(d);
	for (size_t i = 0; i < n; i++)
		d[i] = f[i];
	return d;
}

#endif
