/* batchnorm.c: not written yet. */
typedef int bn_batchnorm_unwritten;
