/*
 * json_read.c: bn_json_scan (bn/json_scan.h), the syntax layer of the
 * {"input": T} reader (bn/json.h) and of the server's config and state
 * bodies.
 *
 * One loop over the bytes with an explicit stack, so nesting depth costs a
 * bit per level and never stack frames. It checks RFC 8259 grammar to the
 * last byte and passes each value, key and close to a semantic layer (for
 * tensors, json_body.c, which also holds bn_json_input_parse), which goes
 * quiet after its first error while this loop runs on: a syntax error
 * anywhere wins, as the headers promise. A run of numbers in an array goes
 * straight into the semantic layer's storage when it offers some (the
 * sink and done events), each number read in one pass.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn/float.h"
#include "json_internal.h"

/* Keys are decoded only to be compared and quoted back, so a short prefix will do. */
#define KEY_MAX BN_JSON_KEY_MAX

struct scanner {
	const char *start, *p, *end;
	/* One bit per open container, set for an object. */
	uint8_t *open;
	size_t depth, open_cap;
	const struct bn_json_events *ev;
	void *ctx;
	struct bn_error err;
};

static int syntax(struct scanner *P, const char *what)
{
	size_t at = (size_t)(P->p - P->start);
	char got[32];

	if (P->p >= P->end)
		snprintf(got, sizeof(got), "the end of the body");
	else if ((unsigned char)*P->p >= 0x20 && (unsigned char)*P->p < 0x7f)
		snprintf(got, sizeof(got), "'%c'", *P->p);
	else
		snprintf(got, sizeof(got), "byte 0x%02x", (unsigned char)*P->p);
	bn_error_set(&P->err, BN_E_INVALID_JSON, "invalid JSON at byte %zu: expected %s, got %s",
			at, what, got);
	return -EBADMSG;
}

static int syntax_msg(struct scanner *P, size_t at, const char *msg)
{
	bn_error_set(&P->err, BN_E_INVALID_JSON, "invalid JSON at byte %zu: %s", at, msg);
	return -EBADMSG;
}

static bool push(struct scanner *P, bool object)
{
	if (P->depth / 8 >= P->open_cap) {
		size_t cap = P->open_cap ? P->open_cap * 2 : 64;
		uint8_t *o = realloc(P->open, cap);

		if (!o)
			return false;
		P->open = o;
		P->open_cap = cap;
	}
	if (object)
		P->open[P->depth / 8] |= (uint8_t)(1u << (P->depth % 8));
	else
		P->open[P->depth / 8] &= (uint8_t)~(1u << (P->depth % 8));
	P->depth++;
	return true;
}

static bool top_is_object(const struct scanner *P)
{
	size_t d = P->depth - 1;

	return P->open[d / 8] >> (d % 8) & 1;
}

static void skip_ws(struct scanner *P)
{
	while (P->p < P->end && (*P->p == ' ' || *P->p == '\n' || *P->p == '\r' || *P->p == '\t'))
		P->p++;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Length of the valid UTF-8 sequence at p, or 0 (RFC 3629: no overlongs, surrogates, > U+10FFFF). */
size_t bn_json_utf8_length(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* A key as scan_string decodes it: the first KEY_MAX bytes, and whether more were dropped. */
struct key {
	char text[KEY_MAX];
	size_t len;
	bool truncated;
};

/* Append n bytes of one character, or note that they did not fit. */
static void key_append(struct key *key, const void *u, size_t n)
{
	if (key->len + n > KEY_MAX) {
		key->truncated = true;
		return;
	}
	memcpy(key->text + key->len, u, n);
	key->len += n;
}

/* Append one decoded code point (below U+10000: \u escapes and ASCII), as UTF-8. */
static void key_put(struct key *key, unsigned cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	key_append(key, u, n);
}

/* A raw UTF-8 character at *pp inside a string; *pp moves past it. */
static int scan_utf8(struct scanner *P, const unsigned char **pp, struct key *key)
{
	size_t n = bn_json_utf8_length(*pp, (const unsigned char *)P->end);

	if (!n)
		return syntax_msg(P, (size_t)(P->p - P->start), "a string is not valid UTF-8");
	/* Once a key is cut, no raw character is kept, even one that would fit. */
	if (key && !key->truncated)
		key_append(key, *pp, n);
	*pp += n;
	return 0;
}

/* The escape whose backslash is at *pp; *pp moves past it. */
static int scan_escape(struct scanner *P, const unsigned char **pp, struct key *key)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const unsigned char *p = *pp, *end = (const unsigned char *)P->end;
	unsigned cp = 0;

	if (end - p < 2) {
		P->p = (const char *)p + 1;
		return syntax(P, "an escape character");
	}
	if (p[1] == 'u') {
		for (int i = 2; i < 6; i++) {
			int h = end - p > i ? hex_value((char)p[i]) : -1;

			if (h < 0) {
				P->p = (const char *)p + i;
				return syntax(P, "four hex digits after \\u");
			}
			cp = cp << 4 | (unsigned)h;
		}
		*pp = p + 6;
	} else if (p[1] && strchr(from, p[1])) {
		cp = (unsigned char)to[strchr(from, p[1]) - from];
		*pp = p + 2;
	} else {
		P->p = (const char *)p + 1;
		return syntax(P, "an escape character (one of \"\\/bfnrtu)");
	}
	if (key)
		key_put(key, cp);
	return 0;
}

/*
 * Scan a string starting at its opening quote. With key non-NULL, decode it
 * (escapes resolved, at most KEY_MAX bytes) for comparing.
 */
static int scan_string(struct scanner *P, struct key *key)
{
	const unsigned char *p = (const unsigned char *)P->p + 1;
	const unsigned char *end = (const unsigned char *)P->end;
	int r;

	for (;;) {
		const unsigned char *run = p;

		while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80)
			p++;
		for (const unsigned char *q = run; key && q < p; q++)
			key_put(key, *q);
		P->p = (const char *)p;
		if (p == end)
			return syntax(P, "'\"' to close the string");
		if (*p == '"') {
			P->p++;
			return 0;
		}
		if (*p < 0x20)
			return syntax(P, "a string character (control characters must be escaped)");
		r = *p >= 0x80 ? scan_utf8(P, &p, key) : scan_escape(P, &p, key);
		if (r < 0)
			return r;
	}
}

/* An object key and its colon; the object is open and the key must follow. */
static int scan_key(struct scanner *P)
{
	struct key key = { .len = 0 };
	int r;

	skip_ws(P);
	if (P->p == P->end || *P->p != '"')
		return syntax(P, "'\"' to start a key");
	r = scan_string(P, &key);
	if (r < 0)
		return r;
	skip_ws(P);
	if (P->p == P->end || *P->p != ':')
		return syntax(P, "':' after the key");
	P->p++;
	P->ev->key(P->ctx, key.text, key.len, key.truncated);
	return 0;
}

static bool starts_with(const struct scanner *P, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(P->end - P->p) >= n && memcmp(P->p, word, n) == 0;
}

/* The bytes a number token runs over: digits, - + . e E. */
static const bool number_chars[256] = {
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
	['8'] = 1, ['9'] = 1, ['-'] = 1, ['+'] = 1, ['.'] = 1, ['e'] = 1, ['E'] = 1,
};

static bool is_number_char(char c)
{
	return number_chars[(unsigned char)c];
}

/*
 * The common case in one pass: a well-formed number in float32's range,
 * handed on. False leaves P->p alone for scan_scalar to judge the token
 * whole, so what is refused, and the words that say why, do not change.
 */
static bool scan_number(struct scanner *P)
{
	const char *tok = P->p;
	struct bn_json_number num;
	size_t used;
	float f;

	if (bn_float_parse_prefix(tok, (size_t)(P->end - tok), &f, &used, NULL) < 0 ||
	    (tok + used < P->end && is_number_char(tok[used])))
		return false;
	P->p = tok + used;
	num = (struct bn_json_number){ .text = tok, .len = used, .f = f };
	P->ev->value(P->ctx, BN_JSON_NUMBER, &num);
	return true;
}

/* A scalar that is not a string: a number, true, false or null. */
static int scan_scalar(struct scanner *P)
{
	static const struct { const char *word; enum bn_json_kind kind; } words[] = {
		{ "true", BN_JSON_TRUE }, { "false", BN_JSON_FALSE }, { "null", BN_JSON_NULL },
	};
	const char *tok = P->p;
	struct bn_json_number num;
	float f = 0;
	int r;

	if (((*tok >= '0' && *tok <= '9') || *tok == '-') && scan_number(P))
		return 0;
	for (size_t i = 0; *tok >= 'a' && i < sizeof(words) / sizeof(words[0]); i++) {
		if (starts_with(P, words[i].word)) {
			P->p += strlen(words[i].word);
			P->ev->value(P->ctx, words[i].kind, NULL);
			return 0;
		}
	}
	if ((*tok == 'N' || *tok == 'I' || *tok == '-') && (starts_with(P, "NaN")
			|| starts_with(P, "Infinity") || starts_with(P, "-Infinity")))
		return syntax_msg(P, (size_t)(P->p - P->start), "NaN and Infinity are not JSON; "
				"a tensor holds finite numbers only");
	while (P->p < P->end && is_number_char(*P->p))
		P->p++;
	if (P->p == tok)
		return syntax(P, "a value");
	r = bn_float_parse(tok, (size_t)(P->p - tok), &f, NULL);
	if (r == -EBADMSG) {
		size_t len = (size_t)(P->p - tok);

		bn_error_set(&P->err, BN_E_INVALID_JSON, "invalid JSON at byte %zu: "
				"%.*s%s is not a JSON number", (size_t)(tok - P->start),
				len > 40 ? 40 : (int)len, tok, len > 40 ? "..." : "");
		return -EBADMSG;
	}
	if (r == -ENOMEM) {
		bn_error_set(&P->err, BN_E_NO_MEMORY, "out of memory reading a number");
		return r;
	}
	num = (struct bn_json_number){ .text = tok, .len = (size_t)(P->p - tok), .f = r ? 0 : f, .r = r };
	P->ev->value(P->ctx, BN_JSON_NUMBER, &num);
	return 0;
}

enum run { RUN_NONE, RUN_AFTER_VALUE, RUN_AT_VALUE };

/*
 * A run of numbers in an array, at P->p, straight into the caller's sink
 * (bn_json_events.sink): bn_float_parse_run takes them while ", " separates
 * them, and any other whitespace around a comma is stepped over here. Says
 * where it stopped: RUN_NONE when it took nothing (the value is
 * scan_value's), RUN_AFTER_VALUE after a number, RUN_AT_VALUE after a
 * comma, where a value must start.
 */
static enum run number_run(struct scanner *P)
{
	enum run at = RUN_NONE;
	size_t room = 0, n = 0, used, k;
	float *out = P->ev->sink(P->ctx, &room);

	if (!out)
		room = 0;
	while (n < room) {
		k = bn_float_parse_run(P->p, (size_t)(P->end - P->p), out + n, room - n, &used);
		if (!k)
			break;
		n += k;
		P->p += used;
		at = RUN_AFTER_VALUE;
		skip_ws(P);
		if (P->p == P->end || *P->p != ',')
			break;
		P->p++;
		skip_ws(P);
		at = RUN_AT_VALUE;
	}
	if (n)
		P->ev->done(P->ctx, n);
	return at;
}

/* A value starts at P->p (whitespace skipped). Containers are opened, not finished. */
static int scan_value(struct scanner *P, bool *opened)
{
	char c = *P->p;

	*opened = false;
	if (c == '{' || c == '[') {
		P->ev->value(P->ctx, c == '{' ? BN_JSON_OBJECT : BN_JSON_ARRAY, NULL);
		if (!push(P, c == '{')) {
			bn_error_set(&P->err, BN_E_NO_MEMORY, "out of memory for nesting");
			return -ENOMEM;
		}
		P->p++;
		*opened = true;
		return 0;
	}
	if (c == '"') {
		int r = scan_string(P, NULL);

		if (r == 0)
			P->ev->value(P->ctx, BN_JSON_STRING, NULL);
		return r;
	}
	return scan_scalar(P);
}

/* Close the container at P->p (its bracket checked by the caller). */
static void close_container(struct scanner *P)
{
	P->p++;
	P->ev->close(P->ctx);
	P->depth--;
}

static int parse(struct scanner *P)
{
	bool opened;
	int r;

	skip_ws(P);
	for (;;) {
		/* Here a value must start. */
		if (P->p == P->end)
			return syntax(P, "a value");
		if (P->ev->sink && P->depth && !top_is_object(P) &&
		    ((*P->p >= '0' && *P->p <= '9') || *P->p == '-')) {
			enum run at = number_run(P);

			if (at == RUN_AT_VALUE)
				continue;
			if (at == RUN_AFTER_VALUE)
				goto after_value;
		}
		r = scan_value(P, &opened);
		if (r < 0)
			return r;
		if (opened) {
			skip_ws(P);
			if (P->p < P->end && *P->p == (top_is_object(P) ? '}' : ']'))
				close_container(P);
			else if (top_is_object(P) && (r = scan_key(P)) < 0)
				return r;
			else
				goto next_value;
		}
after_value:
		/* After a value: a comma, a close, or the end of the body. */
		for (;;) {
			skip_ws(P);
			if (!P->depth) {
				if (P->p != P->end)
					return syntax(P, "the end of the body after the value");
				return 0;
			}
			if (P->p < P->end && *P->p == ',') {
				P->p++;
				if (top_is_object(P) && (r = scan_key(P)) < 0)
					return r;
				break;
			}
			if (P->p < P->end && *P->p == (top_is_object(P) ? '}' : ']'))
				close_container(P);
			else
				return syntax(P, top_is_object(P) ? "',' or '}'" : "',' or ']'");
		}
next_value:
		skip_ws(P);
	}
}

int bn_json_scan(const char *body, size_t len, const struct bn_json_events *ev, void *ctx,
		struct bn_error *err)
{
	struct scanner S = { .start = body, .p = body, .end = body + len, .ev = ev, .ctx = ctx };
	int r = parse(&S);

	free(S.open);
	if (r < 0 && err)
		*err = S.err;
	return r;
}
