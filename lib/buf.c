/* buf.c: not written yet. */
typedef int bn_buf_unwritten;
