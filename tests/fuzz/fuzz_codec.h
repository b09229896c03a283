/*
 * fuzz_codec.h: config comparison for the config, PATCH and state targets.
 */
#ifndef BN_FUZZ_CODEC_H
#define BN_FUZZ_CODEC_H

#include <stdbool.h>
#include <string.h>

#include "bn/batchnorm.h"

/* Field by field, doubles bit for bit; momentum only when it is used. */
static inline bool fuzz_same_config(const struct bn_config *a, const struct bn_config *b)
{
	return a->num_features == b->num_features && memcmp(&a->eps, &b->eps, sizeof(a->eps)) == 0 &&
		a->cumulative == b->cumulative &&
		(a->cumulative || memcmp(&a->momentum, &b->momentum, sizeof(a->momentum)) == 0) &&
		a->affine == b->affine && a->track_running_stats == b->track_running_stats;
}

#endif
