/*
 * codec.c: configs, states and layers written as JSON (codec.h); they are
 * read in codec_read.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bn/json.h"
#include "codec.h"

bool bnd_config_equal(const struct bn_config *a, const struct bn_config *b)
{
	return a->num_features == b->num_features && a->eps == b->eps &&
		a->cumulative == b->cumulative && (a->cumulative || a->momentum == b->momentum) &&
		a->affine == b->affine && a->track_running_stats == b->track_running_stats;
}

void bnd_double_write(struct bn_buf *out, double v)
{
	char s[40];

	for (int p = 1; p <= 17; p++) {
		snprintf(s, sizeof(s), "%.*g", p, v);
		if (strtod(s, NULL) == v)
			break;
	}
	bn_buf_puts(out, s);
	if (!strpbrk(s, ".eni"))
		bn_buf_puts(out, ".0");
}

void bnd_time_write(struct bn_buf *out, int64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char s[40];

	gmtime_r(&secs, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	bn_buf_printf(out, "\"%s.%03dZ\"", s, (int)(ms % 1000));
}

void bnd_config_write(struct bn_buf *out, const struct bn_config *cfg)
{
	bn_buf_printf(out, "{\"num_features\": %zu, \"eps\": ", cfg->num_features);
	bnd_double_write(out, cfg->eps);
	bn_buf_puts(out, ", \"momentum\": ");
	if (cfg->cumulative)
		bn_buf_puts(out, "null");
	else
		bnd_double_write(out, cfg->momentum);
	bn_buf_printf(out, ", \"affine\": %s, \"track_running_stats\": %s}",
		cfg->affine ? "true" : "false", cfg->track_running_stats ? "true" : "false");
}

void bnd_state_write(struct bn_buf *out, const struct bn_config *cfg, const struct bn_state *st)
{
	size_t n = cfg->num_features;

	bn_buf_puts(out, "{");
	if (cfg->affine) {
		bn_buf_puts(out, "\"weight\": ");
		bn_json_floats_write(out, st->weight, n);
		bn_buf_puts(out, ", \"bias\": ");
		bn_json_floats_write(out, st->bias, n);
	}
	if (cfg->track_running_stats) {
		bn_buf_puts(out, cfg->affine ? ", \"running_mean\": " : "\"running_mean\": ");
		bn_json_floats_write(out, st->running_mean, n);
		bn_buf_puts(out, ", \"running_var\": ");
		bn_json_floats_write(out, st->running_var, n);
		bn_buf_printf(out, ", \"num_batches_tracked\": %" PRId64, st->num_batches_tracked);
	}
	bn_buf_puts(out, "}");
}

void bnd_layer_write(struct bn_buf *out, const char *name, const struct bnd_snapshot *snap)
{
	bn_buf_puts(out, "{\"name\": ");
	bn_json_string_write(out, name);
	bn_buf_puts(out, ", \"config\": ");
	bnd_config_write(out, &snap->cfg);
	bn_buf_puts(out, ", \"state\": ");
	bnd_state_write(out, &snap->cfg, &snap->state);
	bn_buf_puts(out, ", \"created_at\": ");
	bnd_time_write(out, snap->created_ms);
	bn_buf_puts(out, ", \"updated_at\": ");
	bnd_time_write(out, snap->updated_ms);
	bn_buf_puts(out, "}");
}
