/*
 * json_write.c: the JSON writers of bn/json.h.
 *
 * Tensors and float arrays are appended to a struct bn_buf as Python's
 * json.dumps spells them, ", " between values and float32 printed by
 * bn_float_format; strings are quoted with what RFC 8259 requires escaped,
 * and bytes that are not UTF-8 become U+FFFD so the answer stays JSON.
 * The buffer's cap bounds every answer, and reserving ahead never trips it
 * early: it is hit only when the text really passes it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "bn/float.h"
#include "json_internal.h"

/* Room for one more value and its separator, written in place. */
#define VALUE_ROOM BN_FLOAT_LIST_ROOM

/* Append v[0..n) separated by ", ", one value at a time: near the buffer's cap. */
static int write_values_exact(struct bn_buf *out, const float *v, size_t n, bool first)
{
	for (size_t i = 0; i < n && !out->err; i++) {
		char tmp[VALUE_ROOM + 1];
		size_t len = 0;

		if (i || !first)
			memcpy(tmp, ", ", 2), len = 2;
		len += bn_float_format(v[i], tmp + len);
		bn_buf_append(out, tmp, len);
	}
	return out->err;
}

/*
 * Append v[0..n) separated by ", ", without brackets. Values are formatted
 * straight into the buffer, with one capacity check per run of values that
 * the room reserved ahead holds (a row, or all of it); only near the cap are
 * they appended one at a time, so the cap is hit only when really passed.
 */
static int write_values(struct bn_buf *out, const float *v, size_t n)
{
	size_t i = 0;

	while (i < n && !out->err) {
		size_t room, fit;
		char *p;

		if (out->cap - out->len < VALUE_ROOM + 1) {
			/* Most values take about 12 bytes: reserve for the rest, but never past the cap. */
			size_t want = (n - i) < SIZE_MAX / 16 ? (n - i) * 12 + VALUE_ROOM : SIZE_MAX;

			if (want > out->max - out->len)
				want = out->max - out->len;
			if (bn_buf_reserve(out, want) < 0)
				return out->err;
			if (out->cap - out->len < VALUE_ROOM + 1)
				return write_values_exact(out, v + i, n - i, i == 0);
		}
		/* As many values as certainly fit in what is reserved, with the NUL. */
		room = out->cap - out->len - 1;
		fit = room / VALUE_ROOM < n - i ? room / VALUE_ROOM : n - i;
		if (fit > (out->max - out->len) / VALUE_ROOM)
			fit = (out->max - out->len) / VALUE_ROOM;
		if (fit == 0)
			return write_values_exact(out, v + i, n - i, i == 0);
		p = bn_float_format_list(out->data + out->len, v + i, fit, i == 0);
		i += fit;
		*p = '\0';
		out->len = (size_t)(p - out->data);
	}
	return out->err;
}

int bn_json_floats_write(struct bn_buf *out, const float *v, size_t n)
{
	bn_buf_append(out, "[", 1);
	write_values(out, v, n);
	return bn_buf_append(out, "]", 1);
}

static void repeat(struct bn_buf *out, char c, size_t n)
{
	char s[BN_TENSOR_MAX_RANK];

	memset(s, c, n);
	bn_buf_append(out, s, n);
}

int bn_json_tensor_write(struct bn_buf *out, const struct bn_tensor *t, enum bn_tensor_form form)
{
	size_t row, rows;

	if (form == BN_FORM_SHAPED) {
		char shape[128];

		bn_tensor_shape_str(t, shape, sizeof(shape));
		bn_buf_puts(out, "{\"shape\": ");
		bn_buf_puts(out, shape);
		bn_buf_puts(out, ", \"data\": ");
		bn_json_floats_write(out, t->data, t->count);
		return bn_buf_append(out, "}", 1);
	}
	row = t->shape[t->rank - 1];
	rows = t->count / row;
	repeat(out, '[', t->rank);
	for (size_t r = 0; r < rows; r++) {
		if (r) {
			/* Close and reopen one level, plus one per outer dimension that wraps here. */
			size_t k = 1, m = r;

			for (unsigned d = t->rank - 1; d-- > 1 && m % t->shape[d] == 0; k++)
				m /= t->shape[d];
			repeat(out, ']', k);
			bn_buf_append(out, ", ", 2);
			repeat(out, '[', k);
		}
		write_values(out, t->data + r * row, row);
	}
	repeat(out, ']', t->rank);
	return out->err;
}

int bn_json_string_write(struct bn_buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);

	bn_buf_append(out, "\"", 1);
	while (p < end) {
		const unsigned char *run = p;
		size_t n;

		while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80)
			p++;
		bn_buf_append(out, run, (size_t)(p - run));
		if (p == end)
			break;
		if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p++ };

			bn_buf_append(out, esc, 2);
		} else if (*p < 0x20) {
			bn_buf_printf(out, "\\u%04x", *p++);
		} else if ((n = bn_json_utf8_length(p, end)) > 0) {
			bn_buf_append(out, p, n);
			p += n;
		} else {
			/* Not UTF-8: the replacement character keeps the output valid JSON. */
			bn_buf_puts(out, "\\ufffd");
			p++;
		}
	}
	return bn_buf_append(out, "\"", 1);
}
