/*
 * batchnorm.c: BatchNorm train and eval forward, as PyTorch 1.13 computes it.
 * (The config, the state and the input check are in batchnorm_state.c.)
 *
 * Numerics. An input is seen as (N, C, S), S the spatial product, n = N * S
 * values per channel. For each channel:
 *
 *   mean     the values summed in double, divided by n in double, rounded
 *            to float (PyTorch's NCHW kernel does exactly this);
 *   var_sum  d = x - mean in float, d * d in float, summed in double (as
 *            PyTorch), minus (sum of d)^2 / n, the correction of the
 *            corrected two-pass algorithm, which removes the error of the
 *            float-rounded mean; it is applied only when above 2^-30 of
 *            the sum, which in practice means offset data (|mean| / stddev
 *            in the thousands), so ordinary data round as PyTorch's; then
 *            rounded to float;
 *   var      var_sum / n in float, the biased variance (batch_var);
 *   invstd   1 / sqrt(var + eps) in double, rounded to float;
 *   a, b     a = invstd * weight in float, b = bias - mean * a rounded once;
 *   output   x * a + b with the product exact in double, the sum rounded
 *            to double, then to float. PyTorch's AVX2 kernel contracts it to
 *            an FMA, which rounds once; the two differ only when the double
 *            sum lands exactly on a float tie.
 *   running  running_mean = f * mean + (1 - f) * running_mean, each product
 *            rounded to float, then the sum; running_var = f * unbiased +
 *            (1 - f) * running_var with unbiased = var_sum / (n - 1) in
 *            float and (1 - f) * running_var in float, the rest in double,
 *            rounded once. f is momentum, or 1 / num_batches_tracked
 *            computed in double, as a float.
 *   eval     invstd = 1 / sqrtf(running_var + (float)eps) all in float.
 *
 * For image size 1 ((N, C) input) PyTorch takes its channels-last
 * reduction, which sums in float per thread, so its statistics depend on
 * the thread count and lose digits on offset data; here every rank goes
 * through the double sums above. Sums use four
 * interleaved partial sums per row, so the compiler vectorizes them; this
 * changes a float-rounded result only when the double sum lies within a
 * few double ulps of a float rounding boundary.
 *
 * Measured against PyTorch 1.13 CPU (one thread) by test_golden over the
 * 35 cases and the worked example of tests/golden (8792 outputs, every
 * batch statistic and running statistic after each step):
 *   spatial size > 1 (NCHW kernel): 0 ulp; every value is bit for bit.
 *   spatial size 1 ((N, C), (N, C, 1, 1)): PyTorch's float sums move its
 *     mean by up to 1 ulp of the channel's largest |input| (32 ulps of the
 *     mean itself); outputs then differ by up to 3 ulps of the channel's
 *     largest |output| (1024 ulps of an output near 0), running_mean by
 *     1 ulp of the inputs, batch_var by 3 ulps, running_var by 2 ulps.
 *   offset data, (4096, 4) around 1e4 with stddev 1: relative error of the
 *     unbiased variance 8.2e-8 here, 1.8e-4 in PyTorch; of the mean 3.1e-8
 *     here, 1.3e-6 in PyTorch.
 * The same results come out of gcc -O0, -O2 and -O3 -march=native (FMA
 * hardware) and clang: nothing here depends on contraction or
 * reassociation. It does assume float arithmetic is evaluated in float
 * (FLT_EVAL_METHOD 0, as on x86-64 and arm64; not i386's x87).
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bn/batchnorm.h"

/* The state must have exactly the arrays cfg says, of cfg's length. */
static int check_state(const struct bn_config *cfg, const struct bn_state *s,
		struct bn_error *err)
{
	bool track = cfg->track_running_stats;

	if (s->num_features != cfg->num_features ||
			!s->weight != !cfg->affine || !s->bias != !cfg->affine ||
			!s->running_mean != !track || !s->running_var != !track ||
			s->num_batches_tracked < 0) {
		bn_error_set(err, BN_E_INVALID_CONFIG, "the layer's state does not match its config");
		return -EINVAL;
	}
	return 0;
}

static int check_output(const struct bn_tensor *x, const struct bn_tensor *y,
		struct bn_error *err)
{
	char want[128], got[128];

	if (y->rank == x->rank && !memcmp(y->shape, x->shape, x->rank * sizeof(x->shape[0])))
		return 0;
	bn_tensor_shape_str(x, want, sizeof(want));
	bn_tensor_shape_str(y, got, sizeof(got));
	bn_error_set(err, BN_E_SHAPE_MISMATCH, "output has shape %s, expected %s", got, want);
	return -EINVAL;
}

/* What both forwards check before touching anything: the input, the state, the output. */
static int check_call(const struct bn_config *cfg, const struct bn_state *state,
		const struct bn_tensor *x, const struct bn_tensor *y, bool use_batch_stats,
		struct bn_error *err)
{
	int r = bn_input_check(cfg, x, use_batch_stats, err);

	if (r == 0)
		r = check_state(cfg, state, err);
	if (r == 0)
		r = check_output(x, y, err);
	return r;
}

/*
 * Reductions. Four interleaved partial sums per row let the compiler
 * vectorize at -O2; the float subtraction and square are PyTorch's rounding.
 */
static double row_sum(const float *x, size_t len)
{
	double s[4] = { 0 };
	size_t i = 0;

	for (; i + 4 <= len; i += 4)
		for (int k = 0; k < 4; k++)
			s[k] += x[i + k];
	for (; i < len; i++)
		s[0] += x[i];
	return (s[0] + s[1]) + (s[2] + s[3]);
}

static void row_dev(const float *x, size_t len, float mean, double *ss, double *sd)
{
	double q[4] = { 0 }, d[4] = { 0 };
	size_t i = 0;

	for (; i + 4 <= len; i += 4) {
		for (int k = 0; k < 4; k++) {
			float v = x[i + k] - mean;
			d[k] += v;
			q[k] += v * v;
		}
	}
	for (; i < len; i++) {
		float v = x[i] - mean;
		d[0] += v;
		q[0] += v * v;
	}
	*ss += (q[0] + q[1]) + (q[2] + q[3]);
	*sd += (d[0] + d[1]) + (d[2] + d[3]);
}

/* The same, for spatial size 1: one row holds one value of every channel. */
static void cols_sum(double *restrict sum, const float *restrict x, size_t len)
{
	size_t i = 0;

	for (; i + 4 <= len; i += 4)
		for (int k = 0; k < 4; k++)
			sum[i + k] += x[i + k];
	for (; i < len; i++)
		sum[i] += x[i];
}

static void cols_dev(const float *restrict x, size_t len, const float *restrict mean,
		double *restrict ss, double *restrict sd)
{
	size_t i = 0;

	for (; i + 4 <= len; i += 4) {
		for (int k = 0; k < 4; k++) {
			float v = x[i + k] - mean[i + k];
			sd[i + k] += v;
			ss[i + k] += v * v;
		}
	}
	for (; i < len; i++) {
		float v = x[i] - mean[i];
		sd[i] += v;
		ss[i] += v * v;
	}
}

/*
 * Per-channel batch mean and var_sum (float, see the top of the file).
 * acc holds 2 * C doubles of scratch.
 */
static void batch_stats(const struct bn_tensor *x, double *acc, float *mean, float *var_sum)
{
	size_t n_batch = x->shape[0], C = x->shape[1], S = bn_tensor_spatial(x);
	double n = (double)n_batch * (double)S;
	double *ss = acc, *sd = acc + C;
	const float *p;

	memset(acc, 0, C * sizeof(*acc));
	p = x->data;
	for (size_t i = 0; i < n_batch; i++)
		if (S == 1) {
			cols_sum(acc, p, C);
			p += C;
		} else {
			for (size_t c = 0; c < C; c++, p += S)
				acc[c] += row_sum(p, S);
		}
	for (size_t c = 0; c < C; c++)
		mean[c] = (float)(acc[c] / n);

	memset(acc, 0, 2 * C * sizeof(*acc));
	p = x->data;
	for (size_t i = 0; i < n_batch; i++)
		if (S == 1) {
			cols_dev(p, C, mean, ss, sd);
			p += C;
		} else {
			for (size_t c = 0; c < C; c++, p += S)
				row_dev(p, S, mean[c], &ss[c], &sd[c]);
		}
	for (size_t c = 0; c < C; c++) {
		double corr = sd[c] * (sd[c] / n);

		/*
		 * A sum of float squares often lies exactly halfway between two
		 * floats; a correction far below float resolution would only
		 * break that tie the other way from PyTorch. Skipping it then
		 * costs at most 2^-30 of the sum.
		 */
		var_sum[c] = (float)(corr > ss[c] * 0x1p-30 ? fmax(ss[c] - corr, 0) : ss[c]);
	}
}

/* The output of one value: x * a + b, the product exact in double, rounded once. */
static inline float scale_shift(float x, double a, double b)
{
	return (float)((double)x * a + b);
}

/*
 * y = x * a + b over a row with one (a, b); y may be x itself. Returns
 * false when a result is not finite: a non-finite times zero is NaN, so
 * the sums of v * 0 stay 0 exactly when every v is finite.
 *
 * Each group of four is computed into v and then stored: all its loads come
 * before its stores, so the compiler vectorizes the group without having to
 * know whether x and y overlap, and one loop serves both in-place and
 * separate buffers (restrict would make the in-place call undefined).
 */
static bool row_apply(const float *x, float *y, size_t len, float a, float b)
{
	double da = a, db = b;
	float z[4] = { 0 };
	size_t i = 0;

	for (; i + 4 <= len; i += 4) {
		float v[4];

		for (int k = 0; k < 4; k++) {
			v[k] = scale_shift(x[i + k], da, db);
			z[k] += v[k] * 0.0f;
		}
		memcpy(y + i, v, sizeof(v));
	}
	for (; i < len; i++) {
		y[i] = scale_shift(x[i], da, db);
		z[0] += y[i] * 0.0f;
	}
	return (z[0] + z[1]) + (z[2] + z[3]) == 0;
}

/*
 * Spatial size 1: one row holds one value of every channel, each with its
 * (a, b). Stored by groups of four as row_apply does, for the same reason.
 */
static bool cols_apply(const float *x, float *y, size_t len, const float *a, const float *b)
{
	float z[4] = { 0 };
	size_t i = 0;

	for (; i + 4 <= len; i += 4) {
		float v[4];

		for (int k = 0; k < 4; k++) {
			v[k] = scale_shift(x[i + k], a[i + k], b[i + k]);
			z[k] += v[k] * 0.0f;
		}
		memcpy(y + i, v, sizeof(v));
	}
	for (; i < len; i++) {
		y[i] = scale_shift(x[i], a[i], b[i]);
		z[0] += y[i] * 0.0f;
	}
	return (z[0] + z[1]) + (z[2] + z[3]) == 0;
}

/*
 * Write y = x * a[c] + b[c]. Returns the first channel with a non-finite
 * output, or C when all are finite.
 */
static size_t apply(const struct bn_tensor *x, struct bn_tensor *y, const float *a, const float *b)
{
	size_t n_batch = x->shape[0], C = x->shape[1], S = bn_tensor_spatial(x);
	size_t bad = C;

	for (size_t i = 0; i < n_batch; i++) {
		const float *px = x->data + i * C * S;
		float *py = y->data + i * C * S;

		if (S == 1) {
			if (!cols_apply(px, py, C, a, b))
				for (size_t c = 0; c < C; c++)
					if (!isfinite(py[c]) && c < bad)
						bad = c;
			continue;
		}
		for (size_t c = 0; c < C; c++, px += S, py += S)
			if (!row_apply(px, py, S, a[c], b[c]) && c < bad)
				bad = c;
	}
	return bad;
}

/* b = bias - mean * a, rounded once (the product of two floats is exact in double). */
static float shift_of(float bias, float mean, float a)
{
	return (float)((double)bias - (double)mean * (double)a);
}

static int non_finite(struct bn_error *err, size_t c, const char *what)
{
	bn_error_set(err, BN_E_NON_FINITE_OUTPUT,
			"channel %zu: the %s would not be finite in float32", c, what);
	return -ERANGE;
}

/*
 * Scratch for one forward call: per channel the two doubles of batch_stats
 * and six floats: a, b, mean, var (or var_sum), running_mean, running_var.
 */
struct scratch {
	double *acc;
	float *a, *b, *mean, *var, *rmean, *rvar;
};

static int scratch_init(struct scratch *t, size_t C, struct bn_error *err)
{
	t->acc = malloc(C * (2 * sizeof(double) + 6 * sizeof(float)));
	if (!t->acc) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory for %zu channels", C);
		return -ENOMEM;
	}
	t->a = (float *)(t->acc + 2 * C);
	t->b = t->a + C;
	t->mean = t->b + C;
	t->var = t->mean + C;
	t->rmean = t->var + C;
	t->rvar = t->rmean + C;
	return 0;
}

/*
 * Batch statistics and the coefficients they give: t->mean, t->var (the
 * biased variance), t->a, t->b, and var_sum in t->rvar for the caller.
 */
static int batch_coefficients(const struct bn_config *cfg, const struct bn_state *s,
		const struct bn_tensor *x, struct scratch *t, struct bn_error *err)
{
	size_t n = x->shape[0] * bn_tensor_spatial(x);

	batch_stats(x, t->acc, t->mean, t->rvar);
	for (size_t c = 0; c < cfg->num_features; c++) {
		float var = t->rvar[c] / (float)n;
		float invstd = (float)(1.0 / sqrt((double)var + cfg->eps));
		float w = cfg->affine ? s->weight[c] : 1.0f;
		float bias = cfg->affine ? s->bias[c] : 0.0f;

		if (!isfinite(t->rvar[c]) || !isfinite(var))
			return non_finite(err, c, "batch variance");
		t->var[c] = var;
		t->a[c] = invstd * w;
		t->b[c] = shift_of(bias, t->mean[c], t->a[c]);
		if (!isfinite(invstd) || !isfinite(t->a[c]) || !isfinite(t->b[c]))
			return non_finite(err, c, "output");
	}
	return 0;
}

/* New running statistics into t->rmean and t->rvar (which holds var_sum on entry). */
static int running_update(const struct bn_config *cfg, const struct bn_state *s,
		size_t n, struct scratch *t, struct bn_error *err)
{
	float f = cfg->cumulative ? (float)(1.0 / (double)(s->num_batches_tracked + 1))
			: (float)cfg->momentum;
	float keep = 1.0f - f;

	for (size_t c = 0; c < cfg->num_features; c++) {
		/* Separate statements, so that no compiler contracts them into an FMA. */
		float new_part = f * t->mean[c];
		float old_part = keep * s->running_mean[c];
		float unbiased = t->rvar[c] / (float)(n - 1);
		float old_var = keep * s->running_var[c];

		t->rmean[c] = new_part + old_part;
		t->rvar[c] = (float)((double)f * (double)unbiased + (double)old_var);
		if (!isfinite(t->rmean[c]))
			return non_finite(err, c, "new running_mean");
		if (!isfinite(t->rvar[c]))
			return non_finite(err, c, "new running_var");
	}
	return 0;
}

int bn_forward_train(const struct bn_config *cfg, struct bn_state *state,
		const struct bn_tensor *x, struct bn_tensor *y,
		float *batch_mean, float *batch_var, struct bn_error *err)
{
	size_t C = cfg->num_features, n, bad;
	struct scratch t;
	int r;

	r = check_call(cfg, state, x, y, true, err);
	if (r < 0)
		return r;
	if (cfg->track_running_stats && state->num_batches_tracked >= BN_MAX_BATCHES_TRACKED) {
		bn_error_set(err, BN_E_OUT_OF_RANGE,
				"num_batches_tracked is already %lld, the most it can count; "
				"reset the running stats or load a smaller value",
				(long long)state->num_batches_tracked);
		return -EOVERFLOW;
	}
	r = scratch_init(&t, C, err);
	if (r < 0)
		return r;

	n = x->shape[0] * bn_tensor_spatial(x);
	r = batch_coefficients(cfg, state, x, &t, err);
	if (r < 0)
		goto out;
	if (cfg->track_running_stats) {
		r = running_update(cfg, state, n, &t, err);
		if (r < 0)
			goto out;
	}
	bad = apply(x, y, t.a, t.b);
	if (bad < C) {
		r = non_finite(err, bad, "output");
		goto out;
	}

	/* Nothing can fail from here on: commit. */
	memcpy(batch_mean, t.mean, C * sizeof(*batch_mean));
	memcpy(batch_var, t.var, C * sizeof(*batch_var));
	if (cfg->track_running_stats) {
		memcpy(state->running_mean, t.rmean, C * sizeof(float));
		memcpy(state->running_var, t.rvar, C * sizeof(float));
		state->num_batches_tracked++;
	}
out:
	free(t.acc);
	return r;
}

int bn_forward_eval(const struct bn_config *cfg, const struct bn_state *state,
		const struct bn_tensor *x, struct bn_tensor *y, struct bn_error *err)
{
	size_t C = cfg->num_features, bad;
	struct scratch t;
	int r;

	r = check_call(cfg, state, x, y, !cfg->track_running_stats, err);
	if (r < 0)
		return r;
	r = scratch_init(&t, C, err);
	if (r < 0)
		return r;

	if (!cfg->track_running_stats) {
		r = batch_coefficients(cfg, state, x, &t, err);
		if (r < 0)
			goto out;
	} else {
		float eps = (float)cfg->eps;

		for (size_t c = 0; c < C; c++) {
			float invstd = 1.0f / sqrtf(state->running_var[c] + eps);
			float w = cfg->affine ? state->weight[c] : 1.0f;
			float bias = cfg->affine ? state->bias[c] : 0.0f;

			t.a[c] = invstd * w;
			t.b[c] = shift_of(bias, state->running_mean[c], t.a[c]);
			if (!isfinite(t.a[c]) || !isfinite(t.b[c])) {
				r = non_finite(err, c, "output");
				goto out;
			}
		}
	}
	bad = apply(x, y, t.a, t.b);
	if (bad < C)
		r = non_finite(err, bad, "output");
out:
	free(t.acc);
	return r;
}
