/*
 * fuzz_state.c: the PUT /v1/layers/{name}/state body (server/codec_read.c).
 *
 * The first byte picks the layer's config (bit 0: no affine, bit 1: no
 * running stats; num_features 1 + (byte >> 2) % 4); the rest is the body,
 * loaded into a copy of a known state. Accepted: the state written with
 * bnd_state_write and loaded into a fresh state is the same, bit for bit.
 * Refused: the copy is exactly the known state still, arrays and all.
 */
#include <errno.h>
#include <stdbool.h>

#include "codec.h"
#include "fuzz.h"

static bool same_array(const float *a, const float *b, size_t n)
{
	return (!a && !b) || (a && b && memcmp(a, b, n * sizeof(float)) == 0);
}

static bool same_state(const struct bn_state *a, const struct bn_state *b)
{
	size_t n = a->num_features;

	return a->num_features == b->num_features && a->num_batches_tracked == b->num_batches_tracked &&
		same_array(a->weight, b->weight, n) && same_array(a->bias, b->bias, n) &&
		same_array(a->running_mean, b->running_mean, n) &&
		same_array(a->running_var, b->running_var, n);
}

/* A state unlike the defaults, so a load that drops a value shows. */
static void known_state(struct bn_state *s, const struct bn_config *cfg)
{
	FUZZ_CHECK(bn_state_init(s, cfg) == 0);
	for (size_t i = 0; i < cfg->num_features; i++) {
		if (s->weight) {
			s->weight[i] = 0.5f + (float)i;
			s->bias[i] = -0.25f * (float)i;
		}
		if (s->running_mean) {
			s->running_mean[i] = 3.0f - (float)i;
			s->running_var[i] = 2.0f + (float)i;
		}
	}
	if (cfg->track_running_stats)
		s->num_batches_tracked = 7;
}

static void check_round_trip(const struct bn_config *cfg, const struct bn_state *st)
{
	struct bn_state fresh;
	struct bn_error err = { 0 };
	struct bn_buf out;

	bn_buf_init(&out, 0);
	bnd_state_write(&out, cfg, st);
	FUZZ_CHECK(out.err == 0);
	FUZZ_CHECK(bn_state_init(&fresh, cfg) == 0);
	FUZZ_CHECK(bnd_state_parse(out.data, out.len, cfg, &fresh, &err) == 0);
	FUZZ_CHECK(same_state(st, &fresh));
	bn_state_finish(&fresh);
	bn_buf_finish(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bn_config cfg;
	struct bn_state known, st;
	struct bn_error err = { 0 };
	float *arrays[4];
	int r;

	if (size < 1)
		return 0;
	bn_config_default(&cfg, 1 + (size_t)(data[0] >> 2) % 4);
	cfg.affine = !(data[0] & 1);
	cfg.track_running_stats = !(data[0] & 2);
	known_state(&known, &cfg);
	FUZZ_CHECK(bn_state_copy(&st, &known) == 0);
	memcpy(arrays, (float *[]){ st.weight, st.bias, st.running_mean, st.running_var }, sizeof(arrays));
	r = bnd_state_parse((const char *)data + 1, size - 1, &cfg, &st, &err);
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -EINVAL || r == -ENOMEM);
		/* Not a new state: the same arrays, holding what they held. */
		FUZZ_CHECK(st.weight == arrays[0] && st.bias == arrays[1] &&
			st.running_mean == arrays[2] && st.running_var == arrays[3]);
		FUZZ_CHECK(same_state(&st, &known));
		FUZZ_CHECK_ERROR(&err);
	} else {
		for (size_t i = 0; st.running_var && i < cfg.num_features; i++)
			FUZZ_CHECK(!(st.running_var[i] < 0));
		FUZZ_CHECK(st.num_batches_tracked >= 0 && st.num_batches_tracked <= BN_MAX_BATCHES_TRACKED);
		check_round_trip(&cfg, &st);
	}
	bn_state_finish(&st);
	bn_state_finish(&known);
	return 0;
}
