/* tensor.c: not written yet. */
typedef int bn_tensor_unwritten;
