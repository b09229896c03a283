/*
 * bn/batchnorm.h: BatchNorm as PyTorch's torch.nn.BatchNorm1d/2d/3d does it.
 *
 * Train forward normalizes each channel with the batch mean and the biased
 * batch variance, then, when the layer tracks running statistics, moves
 * running_mean and running_var (the latter with the unbiased variance,
 * n / (n - 1)) toward the batch by momentum, or by 1 / num_batches_tracked
 * when momentum is null. Eval forward normalizes with the running
 * statistics, or with the batch's when the layer does not track them.
 *
 * Statistics are accumulated in double with two passes, so they do not
 * depend on thread count or data order and stay accurate on offset data.
 * The rounding of the float32 results follows PyTorch's CPU kernel (see
 * batchnorm.c), so outputs agree with PyTorch to the last bit where its
 * own statistics are exact.
 */
#ifndef BN_BATCHNORM_H
#define BN_BATCHNORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bn/error.h"
#include "bn/tensor.h"

/* num_batches_tracked is an integer PyTorch keeps; JSON carries it exactly up to 2^53. */
#define BN_MAX_BATCHES_TRACKED (INT64_C(1) << 53)

struct bn_config {
	size_t num_features;
	double eps;               /* > 0, finite */
	double momentum;          /* in [0, 1]; ignored when cumulative */
	bool cumulative;          /* momentum null: factor 1 / num_batches_tracked */
	bool affine;              /* has weight and bias */
	bool track_running_stats; /* has running_mean, running_var, num_batches_tracked */
};

/* A layer's state_dict. Arrays a config does not have are NULL. */
struct bn_state {
	size_t num_features;
	float *weight, *bias;
	float *running_mean, *running_var;
	int64_t num_batches_tracked;
};

/* PyTorch's defaults for num_features channels: eps 1e-5, momentum 0.1, affine, tracking. */
void bn_config_default(struct bn_config *cfg, size_t num_features);

/*
 * Check a config: num_features in 1..max_features, eps > 0 and finite,
 * momentum in [0, 1] unless cumulative. -EINVAL (BN_E_INVALID_CONFIG) with
 * the field named otherwise.
 */
int bn_config_check(const struct bn_config *cfg, size_t max_features, struct bn_error *err);

/*
 * Allocate the state of a new layer with cfg: weight 1, bias 0,
 * running_mean 0, running_var 1, num_batches_tracked 0. -ENOMEM.
 */
int bn_state_init(struct bn_state *s, const struct bn_config *cfg);

/* Make dst a deep copy of src (dst uninitialised). -ENOMEM, dst untouched then. */
int bn_state_copy(struct bn_state *dst, const struct bn_state *src);

/* Free the arrays and zero s. Accepts a zeroed or half-built state. */
void bn_state_finish(struct bn_state *s);

/* reset_running_stats(): running_mean 0, running_var 1, num_batches_tracked 0. */
void bn_state_reset_running_stats(struct bn_state *s);

/*
 * Check that x can go through a layer with cfg: rank 2..5, shape[1] ==
 * num_features ("expected 3 channels (num_features), got 4"), and, when
 * batch statistics will be used, more than one value per channel
 * ("Expected more than 1 value per channel when training, got input size [1, 3]").
 * use_batch_stats is true for train, and for eval without running stats.
 */
int bn_input_check(const struct bn_config *cfg, const struct bn_tensor *x,
		bool use_batch_stats, struct bn_error *err);

/*
 * Train-step forward. y must have x's shape (it may be x itself, for an
 * in-place step). Writes the output to y, the batch mean and the biased
 * batch variance used to normalize to batch_mean[] and batch_var[]
 * (num_features each), and, when cfg tracks running stats, updates state's
 * running_mean, running_var and num_batches_tracked.
 *
 * Returns -EINVAL as bn_input_check does, -ERANGE (BN_E_NON_FINITE_OUTPUT)
 * when an output or a new running statistic would not be finite in float32,
 * -EOVERFLOW when num_batches_tracked is already BN_MAX_BATCHES_TRACKED,
 * -ENOMEM. On any error state is unchanged (y's contents are then undefined).
 */
int bn_forward_train(const struct bn_config *cfg, struct bn_state *state,
		const struct bn_tensor *x, struct bn_tensor *y,
		float *batch_mean, float *batch_var, struct bn_error *err);

/*
 * Eval forward: normalizes with the running statistics, or with the batch's
 * (biased variance) when cfg does not track them. y as for bn_forward_train.
 * Returns -EINVAL, -ERANGE, -ENOMEM as bn_forward_train does; changes nothing.
 */
int bn_forward_eval(const struct bn_config *cfg, const struct bn_state *state,
		const struct bn_tensor *x, struct bn_tensor *y, struct bn_error *err);

#endif
