/*
 * stats.c: precise-BN calibration and SyncBatchNorm's update (bn/stats.h).
 *
 * Numerics. A tensor's channel summary is two-pass in double: the sum of
 * the values, the mean = sum / n, then the sum of squared deviations from
 * that mean minus (sum of deviations)^2 / n, the corrected two-pass term
 * that removes what the rounding of the mean left. Summaries merge with
 * Chan et al.'s formula (see the header), each in double. For a worker's
 * summary the M2 is var * count, exact but for one rounding. A commit
 * divides once (M2 / (count - 1), or the batch sums / batches) and rounds
 * once to float32. Measured by tests/unit/test_stats.c against PyTorch
 * and float64 NumPy references (see the numbers printed there).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/stats.h"

int bn_calibration_init(struct bn_calibration *c, size_t num_features)
{
	double *a = calloc(4 * num_features, sizeof(*a));

	if (!a)
		return -ENOMEM;
	*c = (struct bn_calibration){
		.num_features = num_features,
		.mean = a, .m2 = a + num_features,
		.batch_mean_sum = a + 2 * num_features, .batch_var_sum = a + 3 * num_features,
	};
	return 0;
}

void bn_calibration_finish(struct bn_calibration *c)
{
	free(c->mean);
	*c = (struct bn_calibration){ 0 };
}

/* A summary's count, means and biased variances, checked for channel count C. */
static int check_summary(int64_t count, int64_t min_count, const double *mean,
		const double *var, size_t C, struct bn_error *err)
{
	if (count < min_count || count > BN_MAX_COUNT) {
		bn_error_set(err, BN_E_INVALID_STATS, "count: expected an integer from %lld to 2^53, got %lld",
				(long long)min_count, (long long)count);
		return -EINVAL;
	}
	for (size_t c = 0; c < C; c++) {
		if (!isfinite(mean[c])) {
			bn_error_set(err, BN_E_INVALID_STATS, "mean[%zu]: expected a finite number", c);
			return -EINVAL;
		}
		if (!isfinite(var[c]) || var[c] < 0) {
			bn_error_set(err, BN_E_INVALID_STATS, "var[%zu]: expected a finite number >= 0", c);
			return -EINVAL;
		}
	}
	return 0;
}

/* Merge (nb, mb, m2b) into (na, *ma, *m2a), Chan et al. */
static void chan_merge(double na, double *ma, double *m2a, double nb, double mb, double m2b)
{
	double n = na + nb, d = mb - *ma;

	*ma += d * (nb / n);
	*m2a += m2b + d * d * (na * nb / n);
}

/* Merge one batch (count, mean[], m2[]) into c; nothing can fail. */
static void merge_batch(struct bn_calibration *c, int64_t count, const double *mean, const double *m2)
{
	double na = (double)c->count, nb = (double)count;

	for (size_t i = 0; i < c->num_features; i++) {
		chan_merge(na, &c->mean[i], &c->m2[i], nb, mean[i], m2[i]);
		c->batch_mean_sum[i] += mean[i];
		c->batch_var_sum[i] += m2[i] / (nb - 1);
	}
	c->count += count;
	c->batches++;
}

static int check_total(const struct bn_calibration *c, int64_t count, struct bn_error *err)
{
	if (count > BN_MAX_COUNT - c->count || c->batches >= BN_MAX_BATCHES_TRACKED) {
		bn_error_set(err, BN_E_INVALID_STATS, "the calibration already holds %lld values per "
				"channel in %lld batches; %lld more would pass 2^53: commit or delete it first",
				(long long)c->count, (long long)c->batches, (long long)count);
		return -EOVERFLOW;
	}
	return 0;
}

int bn_calibration_add_summary(struct bn_calibration *c, int64_t count,
		const double *mean, const double *var, struct bn_error *err)
{
	size_t C = c->num_features;
	double *m2;
	int r;

	r = check_summary(count, 2, mean, var, C, err);
	if (r == 0)
		r = check_total(c, count, err);
	if (r < 0)
		return r;
	m2 = malloc(C * sizeof(*m2));
	if (!m2) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory for %zu channels", C);
		return -ENOMEM;
	}
	for (size_t i = 0; i < C; i++)
		m2[i] = var[i] * (double)count;
	merge_batch(c, count, mean, m2);
	free(m2);
	return 0;
}

/* Per-channel mean and M2 of x, two-pass in double; acc holds C doubles. */
static void tensor_moments(const struct bn_tensor *x, double *mean, double *m2, double *acc)
{
	size_t N = x->shape[0], C = x->shape[1], S = bn_tensor_spatial(x);
	double n = (double)N * (double)S;

	memset(mean, 0, C * sizeof(*mean));
	for (size_t i = 0; i < N; i++)
		for (size_t c = 0; c < C; c++) {
			const float *p = x->data + (i * C + c) * S;

			for (size_t k = 0; k < S; k++)
				mean[c] += p[k];
		}
	for (size_t c = 0; c < C; c++)
		mean[c] /= n;
	memset(m2, 0, C * sizeof(*m2));
	memset(acc, 0, C * sizeof(*acc));
	for (size_t i = 0; i < N; i++)
		for (size_t c = 0; c < C; c++) {
			const float *p = x->data + (i * C + c) * S;

			for (size_t k = 0; k < S; k++) {
				double d = (double)p[k] - mean[c];

				acc[c] += d;
				m2[c] += d * d;
			}
		}
	for (size_t c = 0; c < C; c++)
		m2[c] = fmax(m2[c] - acc[c] * (acc[c] / n), 0);
}

int bn_calibration_add_tensor(struct bn_calibration *c, const struct bn_config *cfg,
		const struct bn_tensor *x, struct bn_error *err)
{
	size_t C = c->num_features;
	int64_t count;
	double *t;
	int r;

	r = bn_input_check(cfg, x, true, err);
	if (r < 0)
		return r;
	if (cfg->num_features != C) {
		bn_error_set(err, BN_E_INVALID_CONFIG, "the calibration has %zu channels, the layer %zu",
				C, cfg->num_features);
		return -EINVAL;
	}
	count = (int64_t)(x->count / C);
	r = check_total(c, count, err);
	if (r < 0)
		return r;
	t = malloc(3 * C * sizeof(*t));
	if (!t) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory for %zu channels", C);
		return -ENOMEM;
	}
	tensor_moments(x, t, t + C, t + 2 * C);
	merge_batch(c, count, t, t + C);
	free(t);
	return 0;
}

int bn_calibration_result(const struct bn_calibration *c, enum bn_calibration_variance mode,
		double *mean, double *var, struct bn_error *err)
{
	double nb = (double)c->batches, n = (double)c->count;

	if (c->batches < 1 || c->count < 2) {
		bn_error_set(err, BN_E_INVALID_STATS, "the calibration holds no batch yet");
		return -EINVAL;
	}
	for (size_t i = 0; i < c->num_features; i++) {
		if (mode == BN_CALIBRATION_POPULATION) {
			mean[i] = c->mean[i];
			var[i] = c->m2[i] / (n - 1);
		} else {
			mean[i] = c->batch_mean_sum[i] / nb;
			var[i] = c->batch_var_sum[i] / nb;
		}
	}
	return 0;
}

int bn_calibration_commit(const struct bn_calibration *c, enum bn_calibration_variance mode,
		const struct bn_config *cfg, struct bn_state *state, struct bn_error *err)
{
	size_t C = c->num_features;
	double *t;
	int r;

	if (!cfg->track_running_stats || !state->running_mean || state->num_features != C) {
		bn_error_set(err, BN_E_INVALID_CONFIG, "the layer does not track running stats");
		return -EINVAL;
	}
	t = malloc(2 * C * sizeof(*t));
	if (!t) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory for %zu channels", C);
		return -ENOMEM;
	}
	r = bn_calibration_result(c, mode, t, t + C, err);
	for (size_t i = 0; r == 0 && i < C; i++) {
		if (!isfinite((float)t[i]) || !isfinite((float)t[C + i])) {
			bn_error_set(err, BN_E_NON_FINITE_OUTPUT, "channel %zu: the calibrated %s would "
					"not be finite in float32", i, isfinite((float)t[i]) ? "variance" : "mean");
			r = -ERANGE;
		}
	}
	if (r == 0) {
		for (size_t i = 0; i < C; i++) {
			state->running_mean[i] = (float)t[i];
			state->running_var[i] = (float)t[C + i];
		}
		state->num_batches_tracked = c->batches;
	}
	free(t);
	return r;
}

/* Check the workers of a SyncBatchNorm step and their total count. */
static int check_workers(const struct bn_config *cfg, const struct bn_state *state,
		const struct bn_worker_stats *w, size_t n, int64_t *ret_total, struct bn_error *err)
{
	int64_t total = 0;

	if (n == 0) {
		bn_error_set(err, BN_E_INVALID_STATS, "stats: expected at least one worker's statistics");
		return -EINVAL;
	}
	for (size_t k = 0; k < n; k++) {
		int r = check_summary(w[k].count, 1, w[k].mean, w[k].var, cfg->num_features, err);

		if (r < 0) {
			char detail[BN_ERROR_DETAIL_MAX];

			snprintf(detail, sizeof(detail), "%s", err ? err->detail : "");
			bn_error_set(err, BN_E_INVALID_STATS, "stats[%zu].%s", k, detail);
			return r;
		}
		if (w[k].count > BN_MAX_COUNT - total) {
			bn_error_set(err, BN_E_INVALID_STATS, "stats: the counts add up to more than 2^53");
			return -EINVAL;
		}
		total += w[k].count;
	}
	if (total < 2) {
		bn_error_set(err, BN_E_TOO_FEW_VALUES, "Expected more than 1 value per channel when "
				"training, got %lld in all", (long long)total);
		return -EINVAL;
	}
	if (cfg->track_running_stats && state->num_batches_tracked >= BN_MAX_BATCHES_TRACKED) {
		bn_error_set(err, BN_E_OUT_OF_RANGE, "num_batches_tracked is already %lld, the most it "
				"can count; reset the running stats or load a smaller value",
				(long long)state->num_batches_tracked);
		return -EOVERFLOW;
	}
	*ret_total = total;
	return 0;
}

/* Global mean and biased variance of channel c over the workers, in double. */
static void gather_channel(const struct bn_worker_stats *w, size_t n, size_t c,
		double *ret_mean, double *ret_var)
{
	double na = (double)w[0].count, mean = w[0].mean[c], m2 = w[0].var[c] * na;

	for (size_t k = 1; k < n; k++) {
		double nb = (double)w[k].count;

		chan_merge(na, &mean, &m2, nb, w[k].mean[c], w[k].var[c] * nb);
		na += nb;
	}
	*ret_mean = mean;
	*ret_var = m2 / na;
}

static int sync_non_finite(struct bn_error *err, size_t c, const char *what)
{
	bn_error_set(err, BN_E_NON_FINITE_OUTPUT,
			"channel %zu: the %s would not be finite in float32", c, what);
	return -ERANGE;
}

/*
 * The new running stats into rm[] and rv[], rounded as bn_forward_train
 * rounds them (see batchnorm.c): unbiased = var * n / (n - 1).
 */
static int sync_running(const struct bn_config *cfg, const struct bn_state *s, int64_t total,
		const float *mean, const double *var, float *rm, float *rv, struct bn_error *err)
{
	float f = cfg->cumulative ? (float)(1.0 / (double)(s->num_batches_tracked + 1))
			: (float)cfg->momentum;
	float keep = 1.0f - f;
	double n = (double)total;

	for (size_t c = 0; c < cfg->num_features; c++) {
		float new_part = f * mean[c];
		float old_part = keep * s->running_mean[c];
		float unbiased = (float)(var[c] * (n / (n - 1)));
		float old_var = keep * s->running_var[c];

		rm[c] = new_part + old_part;
		rv[c] = (float)((double)f * (double)unbiased + (double)old_var);
		if (!isfinite(rm[c]))
			return sync_non_finite(err, c, "new running_mean");
		if (!isfinite(rv[c]))
			return sync_non_finite(err, c, "new running_var");
	}
	return 0;
}

int bn_sync_train(const struct bn_config *cfg, struct bn_state *state,
		const struct bn_worker_stats *w, size_t n, struct bn_sync_result *out,
		struct bn_error *err)
{
	size_t C = cfg->num_features;
	int64_t total;
	double *var;
	float *f;
	int r;

	r = check_workers(cfg, state, w, n, &total, err);
	if (r < 0)
		return r;
	var = malloc(C * (sizeof(double) + 5 * sizeof(float)));
	if (!var) {
		bn_error_set(err, BN_E_NO_MEMORY, "out of memory for %zu channels", C);
		return -ENOMEM;
	}
	f = (float *)(var + C); /* mean, var, invstd, running_mean, running_var */
	for (size_t c = 0; r == 0 && c < C; c++) {
		double mean;

		gather_channel(w, n, c, &mean, &var[c]);
		f[c] = (float)mean;
		f[C + c] = (float)var[c];
		f[2 * C + c] = (float)(1.0 / sqrt(var[c] + cfg->eps));
		if (!isfinite(f[c]) || !isfinite(f[C + c]) || !isfinite(f[2 * C + c]))
			r = sync_non_finite(err, c, "batch statistics");
	}
	if (r == 0 && cfg->track_running_stats)
		r = sync_running(cfg, state, total, f, var, f + 3 * C, f + 4 * C, err);
	if (r == 0) {
		out->count = total;
		memcpy(out->batch_mean, f, C * sizeof(float));
		memcpy(out->batch_var, f + C, C * sizeof(float));
		memcpy(out->invstd, f + 2 * C, C * sizeof(float));
		if (cfg->track_running_stats) {
			memcpy(state->running_mean, f + 3 * C, C * sizeof(float));
			memcpy(state->running_var, f + 4 * C, C * sizeof(float));
			state->num_batches_tracked++;
		}
	}
	free(var);
	return r;
}
