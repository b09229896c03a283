/*
 * routes/routes.h: the handlers of the route table (routes.c), one file
 * per resource, and the steps every change of a layer shares.
 */
#ifndef BND_ROUTES_H
#define BND_ROUTES_H

#include "http.h"

/* routes/layers.c */
int bnd_layers_list(struct bnd_request *req, struct bnd_response *res);
int bnd_layers_put(struct bnd_request *req, struct bnd_response *res);
int bnd_layers_get(struct bnd_request *req, struct bnd_response *res);
int bnd_layers_patch(struct bnd_request *req, struct bnd_response *res);
int bnd_layers_delete(struct bnd_request *req, struct bnd_response *res);

/* routes/forward.c */
int bnd_forward_train(struct bnd_request *req, struct bnd_response *res);
int bnd_forward_eval(struct bnd_request *req, struct bnd_response *res);

/* routes/calibration.c */
int bnd_calibration_post(struct bnd_request *req, struct bnd_response *res);
int bnd_calibration_get(struct bnd_request *req, struct bnd_response *res);
int bnd_calibration_delete(struct bnd_request *req, struct bnd_response *res);
int bnd_calibration_commit(struct bnd_request *req, struct bnd_response *res);

/* routes/ops.c; bnd_ops_train_stats serves POST /train with a {"stats": [...]} body. */
int bnd_ops_train_stats(struct bnd_request *req, struct bnd_response *res);
int bnd_ops_backward(struct bnd_request *req, struct bnd_response *res);
int bnd_ops_folded(struct bnd_request *req, struct bnd_response *res);

/* routes/state.c */
int bnd_state_get(struct bnd_request *req, struct bnd_response *res);
int bnd_state_put(struct bnd_request *req, struct bnd_response *res);
int bnd_state_reset(struct bnd_request *req, struct bnd_response *res);

/* routes/history.c */
int bnd_history_get(struct bnd_request *req, struct bnd_response *res);

/* routes/models.c */
int bnd_models_import(struct bnd_request *req, struct bnd_response *res);
int bnd_models_export(struct bnd_request *req, struct bnd_response *res);

/* routes/service.c */
int bnd_service_index(struct bnd_request *req, struct bnd_response *res);
int bnd_service_live(struct bnd_request *req, struct bnd_response *res);
int bnd_service_ready(struct bnd_request *req, struct bnd_response *res);
int bnd_service_metrics(struct bnd_request *req, struct bnd_response *res);
int bnd_service_openapi(struct bnd_request *req, struct bnd_response *res);

/* The layer's num_features, which a layer keeps for its life. */
size_t bnd_layer_width(struct bnd_layer *l);

/*
 * Reserve, from the memory budget, a layer's answer as GET shows it (the
 * answer's buffer sized for it) and copies extra copies of its state.
 * 0, or a 503 (or 413) in res; see bnd_reserve().
 */
int bnd_reserve_layer(struct bnd_request *req, struct bnd_response *res, size_t num_features,
		size_t copies);

/*
 * Begin a change of req->layer: take its write lock, then refuse a layer
 * deleted meanwhile (404) and a failed If-Match (412). On success the lock
 * is held and *ret_cur is a reference to the current snapshot; end with
 * bnd_change_end() whatever happens next. On error nothing is held.
 */
int bnd_change_begin(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot **ret_cur);

/*
 * Commit next (a changed copy of the current snapshot): bump its version
 * and updated time, write it to the store, and publish it. Takes next; on
 * error (503, store unchanged) it is freed and the layer keeps its state.
 */
int bnd_change_commit(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot *next);

/* Release what bnd_change_begin took. */
void bnd_change_end(struct bnd_request *req, struct bnd_snapshot *cur);

/*
 * The whole of a change that PATCH, PUT /state and reset share: begin, make
 * a copy of the current snapshot, let change() edit the copy, commit it and
 * answer() with it, then end. change() returns a negative errno with e
 * filled (the client gets that error and nothing changes), 0 to commit the
 * copy, or 1 when the copy equals cur: nothing is committed, the ETag stays,
 * and answer() gets cur.
 */
int bnd_change_apply(struct bnd_request *req, struct bnd_response *res,
		int (*change)(struct bnd_request *req, const struct bnd_snapshot *cur,
			struct bnd_snapshot *next, struct bn_error *e),
		int (*answer)(struct bnd_request *req, struct bnd_response *res,
			const struct bnd_snapshot *snap));

#endif
