/* json.c: not written yet. */
typedef int bn_json_unwritten;
