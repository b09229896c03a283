/* float.c: not written yet. */
typedef int bn_float_unwritten;
