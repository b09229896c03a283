/* error.c: not written yet. */
typedef int bn_error_unwritten;
