/*
 * error.c: filling a struct bn_error.
 */
#include <stdarg.h>
#include <stdio.h>

#include "bn/error.h"

void bn_error_set(struct bn_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
}
