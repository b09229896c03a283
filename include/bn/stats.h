/*
 * bn/stats.h: exact per-channel statistics over many batches, and what is
 * built from them: precise-BN calibration and SyncBatchNorm's update.
 *
 * A set of values per channel is summarized by (count, mean, M2), M2 the
 * sum of squared deviations from the mean. Two summaries merge with Chan,
 * Golub and LeVeque's parallel formula,
 *
 *   n = na + nb,  d = mb - ma,  mean = ma + d * nb / n,
 *   M2 = M2a + M2b + d * d * na * nb / n,
 *
 * so the result depends neither on the order of the batches nor on how the
 * data were split into them (up to double rounding).
 *
 * Numerics: everything is in double. A tensor's per-channel summary is a
 * two-pass one (the mean, then the sum of squared deviations with the
 * corrected two-pass term), so offset data (values around 1e4 with a
 * spread of 1) keep about 1e-12 relative accuracy in the variance, far
 * below float32's. The merge adds at most a few double ulps per batch.
 * Results are rounded to float32 once, when written to a layer's state.
 * Measured against PyTorch and a float64 NumPy reference: see test_stats.c.
 */
#ifndef BN_STATS_H
#define BN_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "bn/batchnorm.h"
#include "bn/error.h"
#include "bn/tensor.h"

/* Counts are carried exactly by doubles and JSON up to 2^53. */
#define BN_MAX_COUNT (INT64_C(1) << 53)

/*
 * An open calibration of one layer. Beside the exact (count, mean, M2) it
 * keeps, per channel, the sums over batches of each batch's mean and
 * unbiased variance, for the batch_average result.
 */
struct bn_calibration {
	size_t num_features;
	int64_t count;          /* values per channel seen, over all batches */
	int64_t batches;        /* batches (tensors or summaries) added */
	double *mean;           /* [C] the mean of every value seen */
	double *m2;             /* [C] their sum of squared deviations from mean */
	double *batch_mean_sum; /* [C] sum over batches of the batch mean */
	double *batch_var_sum;  /* [C] sum over batches of the unbiased batch variance */
};

/* What a commit writes as running_var (and running_mean). */
enum bn_calibration_variance {
	BN_CALIBRATION_POPULATION,    /* mean and unbiased variance of every value seen */
	BN_CALIBRATION_BATCH_AVERAGE, /* average of per-batch means and unbiased variances */
};

/* Allocate an empty calibration of num_features channels (all zero). -ENOMEM. */
int bn_calibration_init(struct bn_calibration *c, size_t num_features);

/* Free the arrays and zero c. Accepts a zeroed or half-built calibration. */
void bn_calibration_finish(struct bn_calibration *c);

/*
 * Add a worker's summary of one batch: count values per channel with
 * mean[c] and biased variance var[c]. count must be 2..BN_MAX_COUNT (a
 * batch with one value has no unbiased variance, as training refuses it),
 * every value finite, var >= 0; the total count may not pass BN_MAX_COUNT.
 * -EINVAL (BN_E_INVALID_STATS, naming the field and channel) or -EOVERFLOW
 * otherwise; c is unchanged on any error.
 */
int bn_calibration_add_summary(struct bn_calibration *c, int64_t count,
		const double *mean, const double *var, struct bn_error *err);

/*
 * Add a batch: the per-channel summary of x (checked as a train input with
 * bn_input_check against cfg), merged as bn_calibration_add_summary does.
 * -EINVAL, -EOVERFLOW, -ENOMEM; c unchanged on error.
 */
int bn_calibration_add_tensor(struct bn_calibration *c, const struct bn_config *cfg,
		const struct bn_tensor *x, struct bn_error *err);

/*
 * The per-channel mean and unbiased variance the calibration gives for the
 * variance mode, into mean[] and var[] (num_features each). -EINVAL
 * (BN_E_INVALID_STATS) when nothing was added; outputs written only on success.
 */
int bn_calibration_result(const struct bn_calibration *c, enum bn_calibration_variance mode,
		double *mean, double *var, struct bn_error *err);

/*
 * Write the result into state's running_mean and running_var (rounded to
 * float32) and set num_batches_tracked to the number of batches, as
 * torch.optim.swa_utils.update_bn leaves it. cfg must track running stats
 * (-EINVAL otherwise); -ERANGE when a value is not finite in float32.
 * state is unchanged on error.
 */
int bn_calibration_commit(const struct bn_calibration *c, enum bn_calibration_variance mode,
		const struct bn_config *cfg, struct bn_state *state, struct bn_error *err);

/* One worker's statistics for a SyncBatchNorm step: biased variance. */
struct bn_worker_stats {
	int64_t count;
	const double *mean; /* [C] */
	const double *var;  /* [C], biased */
};

/* The global statistics a SyncBatchNorm step answers (num_features each). */
struct bn_sync_result {
	int64_t count;     /* sum of the workers' counts */
	float *batch_mean; /* the global batch mean */
	float *batch_var;  /* the global biased variance every worker normalizes with */
	float *invstd;     /* 1 / sqrt(batch_var + eps) */
};

/*
 * A train step from per-worker statistics, as nn.SyncBatchNorm does after
 * its all-gather (torch.batch_norm_gather_stats_with_counts): merge the n
 * workers into the global mean and biased variance, then, when cfg tracks
 * running stats, update them exactly as bn_forward_train does, with the
 * unbiased variance of the global count, and increment num_batches_tracked.
 * Each worker's count is 1..BN_MAX_COUNT and their sum 2..BN_MAX_COUNT
 * ("Expected more than 1 value per channel when training"), values finite,
 * var >= 0. -EINVAL, -ERANGE (a result not finite in float32), -EOVERFLOW,
 * -ENOMEM; state and out are unchanged on error.
 */
int bn_sync_train(const struct bn_config *cfg, struct bn_state *state,
		const struct bn_worker_stats *w, size_t n, struct bn_sync_result *out,
		struct bn_error *err);

#endif
