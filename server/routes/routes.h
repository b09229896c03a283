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

/*
 * routes/forward.c: the tail every train step shares (a tensor batch or
 * workers' statistics). Between bnd_change_begin and end, with next a copy
 * of the base after the step (its step, version and updated time are
 * bumped here) and h its history entry's count, batch_mean and batch_var
 * (the rest is filled from next): queue the step for commit and call
 * answer(req, res, ctx, rc) once it is done (rc 0 committed, else the
 * failure). next and h's arrays must live until answer; the caller keeps
 * its reference to next. BND_DEFERRED, or a problem (answer not called).
 */
int bnd_train_queue(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot *next,
		const struct bnd_history_entry *h,
		int (*answer)(struct bnd_request *req, struct bnd_response *res, void *ctx, int rc), void *ctx);

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
 * deleted or being deleted (404) and a failed If-Match (412), judged
 * against the state the change applies to: the pending one, when changes
 * are queued, else the committed one. On success the lock is held and
 * *ret_base is a reference to that state; end with bnd_change_end()
 * whatever happens next. On error nothing is held.
 */
int bnd_change_begin(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot **ret_base);

/* Release what bnd_change_begin took. */
void bnd_change_end(struct bnd_request *req, struct bnd_snapshot *base);

/*
 * With the layer's write lock held: queue req->change (its kind and next
 * set; next is taken) for req->layer, and answer with snap (a reference,
 * taken) through answer() once committed, or with a 503 when the commit
 * fails. Returns BND_DEFERRED, or a problem with everything released.
 */
int bnd_change_defer(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot *snap,
		int (*answer)(struct bnd_request *req, struct bnd_response *res,
			const struct bnd_snapshot *snap));

/*
 * Between begin and end: answer with snap through answer(), now when the
 * layer has nothing queued, else once what is queued is committed (a 503
 * if that fails), since snap may show what is not durable yet. Returns
 * answer()'s result, BND_DEFERRED, or a problem.
 */
int bnd_change_answer(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot *snap,
		int (*answer)(struct bnd_request *req, struct bnd_response *res,
			const struct bnd_snapshot *snap));

/*
 * Between begin and end: queue next (taken; a changed copy of the base,
 * its version and updated time bumped here) for commit, and answer()
 * with it once committed; a 503 if the commit fails, which leaves the
 * layer as it was last committed. Returns BND_DEFERRED or a problem.
 */
int bnd_change_queue(struct bnd_request *req, struct bnd_response *res, struct bnd_snapshot *next,
		int (*answer)(struct bnd_request *req, struct bnd_response *res,
			const struct bnd_snapshot *snap));

/*
 * The whole of a change that PATCH, PUT /state and reset share: begin, make
 * a copy of the base snapshot, let change() edit the copy, queue it and
 * answer() with it once committed, then end. change() returns a negative
 * errno with e filled (the client gets that error and nothing changes), 0
 * to commit the copy, or 1 when the copy equals the base: nothing is
 * committed, the ETag stays, and answer() gets the base.
 */
int bnd_change_apply(struct bnd_request *req, struct bnd_response *res,
		int (*change)(struct bnd_request *req, const struct bnd_snapshot *cur,
			struct bnd_snapshot *next, struct bn_error *e),
		int (*answer)(struct bnd_request *req, struct bnd_response *res,
			const struct bnd_snapshot *snap));

#endif
