/*
 * backward.c: BatchNorm's gradients and its folded eval map (bn/backward.h).
 *
 * Numerics. Per channel, in double: the batch mean (the values summed,
 * divided by n), the biased variance (two-pass, with the corrected term
 * removing the mean's rounding) and invstd = 1 / sqrt(var + eps); or, in
 * eval mode, the running statistics widened to double. Then the sums
 * sum(dy) and sum(dy * xhat), and each dx, in double, rounded to float32
 * once. PyTorch's CPU kernel keeps its statistics and invstd in float32
 * and sums in double where it can (accscalar_t), so its results lie within
 * a few float32 ulps (relative to the channel's largest gradient) of these;
 * test_backward.c prints the worst differences from PyTorch and from a
 * float64 autograd reference.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bn/backward.h"

/* Per-channel working values, all double. */
struct chan {
	double mean, invstd, w, sum_dy, sum_dy_xhat;
};

/* The channel's values at sample i: x and dy share the layout. */
#define AT(t, i, c, C, S) ((t)->data + ((i) * (C) + (c)) * (S))

static void batch_moments(const struct bn_tensor *x, size_t c, double eps, struct chan *ch)
{
	size_t N = x->shape[0], C = x->shape[1], S = bn_tensor_spatial(x);
	double n = (double)N * (double)S, sum = 0, ss = 0, sd = 0;

	for (size_t i = 0; i < N; i++)
		for (size_t k = 0; k < S; k++)
			sum += AT(x, i, c, C, S)[k];
	ch->mean = sum / n;
	for (size_t i = 0; i < N; i++)
		for (size_t k = 0; k < S; k++) {
			double d = AT(x, i, c, C, S)[k] - ch->mean;

			sd += d;
			ss += d * d;
		}
	ch->invstd = 1.0 / sqrt(fmax(ss - sd * (sd / n), 0) / n + eps);
}

static void grad_sums(const struct bn_tensor *x, const struct bn_tensor *dy, size_t c, struct chan *ch)
{
	size_t N = x->shape[0], C = x->shape[1], S = bn_tensor_spatial(x);

	ch->sum_dy = ch->sum_dy_xhat = 0;
	for (size_t i = 0; i < N; i++) {
		const float *px = AT(x, i, c, C, S), *pg = AT(dy, i, c, C, S);

		for (size_t k = 0; k < S; k++) {
			ch->sum_dy += pg[k];
			ch->sum_dy_xhat += pg[k] * ((px[k] - ch->mean) * ch->invstd);
		}
	}
}

/* dx for channel c; false when a value is not finite in float32. */
static bool grad_input(const struct bn_tensor *x, const struct bn_tensor *dy, struct bn_tensor *dx,
		size_t c, bool batch, const struct chan *ch)
{
	size_t N = x->shape[0], C = x->shape[1], S = bn_tensor_spatial(x);
	double n = (double)N * (double)S, k1 = ch->w * ch->invstd;
	double mdy = ch->sum_dy / n, mdx = ch->sum_dy_xhat / n;
	bool ok = true;

	for (size_t i = 0; i < N; i++) {
		const float *px = AT(x, i, c, C, S), *pg = AT(dy, i, c, C, S);
		float *po = AT(dx, i, c, C, S);

		for (size_t k = 0; k < S; k++) {
			double g = pg[k];

			if (batch)
				g = g - mdy - (px[k] - ch->mean) * ch->invstd * mdx;
			po[k] = (float)(k1 * g);
			ok &= isfinite(po[k]) != 0;
		}
	}
	return ok;
}

static int same_shape(const struct bn_tensor *x, const struct bn_tensor *t, const char *what,
		struct bn_error *err)
{
	char want[128], got[128];

	if (t->rank == x->rank && !memcmp(t->shape, x->shape, x->rank * sizeof(x->shape[0])))
		return 0;
	bn_tensor_shape_str(x, want, sizeof(want));
	bn_tensor_shape_str(t, got, sizeof(got));
	bn_error_set(err, BN_E_SHAPE_MISMATCH, "%s has shape %s, expected the input's %s", what, got, want);
	return -EINVAL;
}

static int not_finite(struct bn_error *err, size_t c, const char *what)
{
	bn_error_set(err, BN_E_NON_FINITE_OUTPUT, "channel %zu: the %s would not be finite in float32", c, what);
	return -ERANGE;
}

int bn_backward(const struct bn_config *cfg, const struct bn_state *state, bool train,
		const struct bn_tensor *x, const struct bn_tensor *dy, struct bn_tensor *dx,
		float *grad_weight, float *grad_bias, struct bn_error *err)
{
	bool batch = train || !cfg->track_running_stats;
	int r;

	r = bn_input_check(cfg, x, batch, err);
	if (r == 0)
		r = same_shape(x, dy, "grad_output", err);
	if (r == 0)
		r = same_shape(x, dx, "grad_input", err);
	if (r == 0 && (state->num_features != cfg->num_features || !state->weight != !cfg->affine ||
			(!batch && !state->running_mean))) {
		bn_error_set(err, BN_E_INVALID_CONFIG, "the layer's state does not match its config");
		r = -EINVAL;
	}
	for (size_t c = 0; r == 0 && c < cfg->num_features; c++) {
		struct chan ch = { .w = cfg->affine ? state->weight[c] : 1.0 };

		if (batch) {
			batch_moments(x, c, cfg->eps, &ch);
		} else {
			ch.mean = state->running_mean[c];
			ch.invstd = 1.0 / sqrt((double)state->running_var[c] + cfg->eps);
		}
		grad_sums(x, dy, c, &ch);
		if (grad_weight && grad_bias) {
			grad_weight[c] = (float)ch.sum_dy_xhat;
			grad_bias[c] = (float)ch.sum_dy;
			if (!isfinite(grad_weight[c]) || !isfinite(grad_bias[c]))
				return not_finite(err, c, "weight or bias gradient");
		}
		if (!grad_input(x, dy, dx, c, batch, &ch))
			return not_finite(err, c, "input gradient");
	}
	return r;
}

int bn_fold(const struct bn_config *cfg, const struct bn_state *state,
		float *scale, float *shift, struct bn_error *err)
{
	size_t C = cfg->num_features;
	float *t;

	if (!cfg->track_running_stats || !state->running_mean || !state->running_var) {
		bn_error_set(err, BN_E_INVALID_CONFIG, "the layer does not track running stats: its "
				"eval mode uses each batch's statistics and folds into no fixed map");
		return -EINVAL;
	}
	t = malloc(2 * C * sizeof(*t));
	if (!t) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory for %zu channels", C);
		return -ENOMEM;
	}
	for (size_t c = 0; c < C; c++) {
		double w = cfg->affine ? state->weight[c] : 1.0, b = cfg->affine ? state->bias[c] : 0.0;
		double s = w / sqrt((double)state->running_var[c] + cfg->eps);

		t[c] = (float)s;
		t[C + c] = (float)(b - (double)state->running_mean[c] * s);
		if (!isfinite(t[c]) || !isfinite(t[C + c])) {
			free(t);
			return not_finite(err, c, "folded scale or shift");
		}
	}
	memcpy(scale, t, C * sizeof(*t));
	memcpy(shift, t + C, C * sizeof(*t));
	free(t);
	return 0;
}
