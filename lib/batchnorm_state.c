/*
 * batchnorm_state.c: a layer's config and state, and the checks before a
 * forward pass (bn/batchnorm.h).
 *
 * PyTorch's defaults, the validation of a config a client sends, the
 * allocation, copying and reset of the state_dict arrays, and the check
 * that an input fits the layer. The forward math is in batchnorm.c.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bn/batchnorm.h"

void bn_config_default(struct bn_config *cfg, size_t num_features)
{
	*cfg = (struct bn_config){
		.num_features = num_features,
		.eps = 1e-5,
		.momentum = 0.1,
		.cumulative = false,
		.affine = true,
		.track_running_stats = true,
	};
}

int bn_config_check(const struct bn_config *cfg, size_t max_features, struct bn_error *err)
{
	if (cfg->num_features < 1 || cfg->num_features > max_features) {
		bn_error_set(err, BN_E_INVALID_CONFIG,
				"num_features must be an integer from 1 to %zu, got %zu",
				max_features, cfg->num_features);
		return -EINVAL;
	}
	if (!(cfg->eps > 0) || !isfinite(cfg->eps)) {
		bn_error_set(err, BN_E_INVALID_CONFIG,
				"eps must be a finite number greater than 0, got %g", cfg->eps);
		return -EINVAL;
	}
	if (!cfg->cumulative && !(cfg->momentum >= 0 && cfg->momentum <= 1)) {
		bn_error_set(err, BN_E_INVALID_CONFIG,
				"momentum must be a number in [0, 1] or null, got %g", cfg->momentum);
		return -EINVAL;
	}
	return 0;
}

static float *filled(size_t n, float value)
{
	float *p = malloc(n * sizeof(*p));

	if (p)
		for (size_t i = 0; i < n; i++)
			p[i] = value;
	return p;
}

static float *copied(const float *src, size_t n)
{
	float *p = malloc(n * sizeof(*p));

	if (p)
		memcpy(p, src, n * sizeof(*p));
	return p;
}

int bn_state_init(struct bn_state *s, const struct bn_config *cfg)
{
	size_t c = cfg->num_features;
	struct bn_state t = { .num_features = c };

	if (cfg->affine) {
		t.weight = filled(c, 1.0f);
		t.bias = filled(c, 0.0f);
		if (!t.weight || !t.bias)
			goto fail;
	}
	if (cfg->track_running_stats) {
		t.running_mean = filled(c, 0.0f);
		t.running_var = filled(c, 1.0f);
		if (!t.running_mean || !t.running_var)
			goto fail;
	}
	*s = t;
	return 0;
fail:
	bn_state_finish(&t);
	return -ENOMEM;
}

int bn_state_copy(struct bn_state *dst, const struct bn_state *src)
{
	size_t c = src->num_features;
	struct bn_state t = {
		.num_features = c,
		.num_batches_tracked = src->num_batches_tracked,
	};

	if ((src->weight && !(t.weight = copied(src->weight, c))) ||
			(src->bias && !(t.bias = copied(src->bias, c))) ||
			(src->running_mean && !(t.running_mean = copied(src->running_mean, c))) ||
			(src->running_var && !(t.running_var = copied(src->running_var, c)))) {
		bn_state_finish(&t);
		return -ENOMEM;
	}
	*dst = t;
	return 0;
}

void bn_state_finish(struct bn_state *s)
{
	free(s->weight);
	free(s->bias);
	free(s->running_mean);
	free(s->running_var);
	*s = (struct bn_state){ 0 };
}

void bn_state_reset_running_stats(struct bn_state *s)
{
	for (size_t c = 0; s->running_mean && c < s->num_features; c++)
		s->running_mean[c] = 0.0f;
	for (size_t c = 0; s->running_var && c < s->num_features; c++)
		s->running_var[c] = 1.0f;
	s->num_batches_tracked = 0;
}

int bn_input_check(const struct bn_config *cfg, const struct bn_tensor *x,
		bool use_batch_stats, struct bn_error *err)
{
	char shape[128];

	if (x->rank < 2 || x->rank > 5) {
		bn_error_set(err, BN_E_BAD_RANK, "expected 2D to 5D input (got %uD input)", x->rank);
		return -EINVAL;
	}
	if (x->shape[1] != cfg->num_features) {
		bn_error_set(err, BN_E_WRONG_CHANNELS,
				"expected %zu channels (num_features), got %zu",
				cfg->num_features, x->shape[1]);
		return -EINVAL;
	}
	if (use_batch_stats && x->shape[0] * bn_tensor_spatial(x) <= 1) {
		bn_tensor_shape_str(x, shape, sizeof(shape));
		bn_error_set(err, BN_E_TOO_FEW_VALUES,
				"Expected more than 1 value per channel when training, got input size %s",
				shape);
		return -EINVAL;
	}
	return 0;
}
