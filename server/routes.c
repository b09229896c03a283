/*
 * routes.c: the route table. Patterns are OpenAPI-style, as
 * server/openapi.json has them; the OpenAPI test compares the two.
 */
#include "routes/routes.h"

#define LAYER   BND_ROUTE_LAYER
#define MUTATES BND_ROUTE_MUTATES
#define BODY    BND_ROUTE_BODY
#define NPY     BND_ROUTE_NPY
#define BINARY  BND_ROUTE_BINARY
#define PROBE   BND_ROUTE_PROBE
#define STORE   BND_ROUTE_STORE

const struct bnd_route bnd_routes[] = {
	{ "GET",    "/",                              bnd_service_index,   PROBE },
	{ "GET",    "/livez",                         bnd_service_live,    PROBE },
	{ "GET",    "/healthz",                       bnd_service_live,    PROBE },
	{ "GET",    "/readyz",                        bnd_service_ready,   PROBE | STORE },
	{ "GET",    "/metrics",                       bnd_service_metrics, PROBE },
	{ "GET",    "/openapi.json",                  bnd_service_openapi, PROBE },
	{ "GET",    "/v1/layers",                     bnd_layers_list,     STORE },
	{ "PUT",    "/v1/layers/{name}",              bnd_layers_put,      MUTATES | BODY | STORE },
	{ "GET",    "/v1/layers/{name}",              bnd_layers_get,      LAYER | STORE },
	{ "PATCH",  "/v1/layers/{name}",              bnd_layers_patch,    LAYER | MUTATES | BODY | STORE },
	{ "DELETE", "/v1/layers/{name}",              bnd_layers_delete,   LAYER | MUTATES | STORE },
	{ "POST",   "/v1/layers/{name}/train",        bnd_forward_train,   LAYER | MUTATES | BODY | NPY | STORE },
	{ "POST",   "/v1/layers/{name}/eval",         bnd_forward_eval,    LAYER | BODY | NPY | STORE },
	{ "GET",    "/v1/layers/{name}/state",        bnd_state_get,       LAYER | STORE },
	{ "PUT",    "/v1/layers/{name}/state",        bnd_state_put,       LAYER | MUTATES | BODY | BINARY | STORE },
	{ "POST",   "/v1/layers/{name}/reset",        bnd_state_reset,     LAYER | MUTATES | STORE },
	{ "GET",    "/v1/layers/{name}/history",      bnd_history_get,     LAYER | STORE },
	{ "POST",   "/v1/layers/{name}/calibration",  bnd_calibration_post,   LAYER | MUTATES | BODY | NPY | STORE },
	{ "GET",    "/v1/layers/{name}/calibration",  bnd_calibration_get,    LAYER | STORE },
	{ "DELETE", "/v1/layers/{name}/calibration",  bnd_calibration_delete, LAYER | MUTATES | STORE },
	{ "POST",   "/v1/layers/{name}/calibration/commit", bnd_calibration_commit, LAYER | MUTATES | BODY | STORE },
	{ "POST",   "/v1/layers/{name}/backward",     bnd_ops_backward,    LAYER | BODY | STORE },
	{ "GET",    "/v1/layers/{name}/folded",       bnd_ops_folded,      LAYER | STORE },
	{ "POST",   "/v1/import",                     bnd_models_import,   MUTATES | BODY | BINARY | STORE },
	{ "GET",    "/v1/export",                     bnd_models_export,   STORE },
};

const size_t bnd_routes_count = sizeof(bnd_routes) / sizeof(bnd_routes[0]);
