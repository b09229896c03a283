/* npy.c: not written yet. */
typedef int bn_npy_unwritten;
