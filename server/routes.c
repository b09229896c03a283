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

const struct bnd_route bnd_routes[] = {
	{ "GET",    "/",                              bnd_service_index,   PROBE },
	{ "GET",    "/livez",                         bnd_service_live,    PROBE },
	{ "GET",    "/healthz",                       bnd_service_live,    PROBE },
	{ "GET",    "/readyz",                        bnd_service_ready,   PROBE },
	{ "GET",    "/metrics",                       bnd_service_metrics, PROBE },
	{ "GET",    "/openapi.json",                  bnd_service_openapi, PROBE },
	{ "GET",    "/v1/layers",                     bnd_layers_list,     0 },
	{ "PUT",    "/v1/layers/{name}",              bnd_layers_put,      MUTATES | BODY },
	{ "GET",    "/v1/layers/{name}",              bnd_layers_get,      LAYER },
	{ "PATCH",  "/v1/layers/{name}",              bnd_layers_patch,    LAYER | MUTATES | BODY },
	{ "DELETE", "/v1/layers/{name}",              bnd_layers_delete,   LAYER | MUTATES },
	{ "POST",   "/v1/layers/{name}/train",        bnd_forward_train,   LAYER | MUTATES | BODY | NPY },
	{ "POST",   "/v1/layers/{name}/eval",         bnd_forward_eval,    LAYER | BODY | NPY },
	{ "GET",    "/v1/layers/{name}/state",        bnd_state_get,       LAYER },
	{ "PUT",    "/v1/layers/{name}/state",        bnd_state_put,       LAYER | MUTATES | BODY | BINARY },
	{ "POST",   "/v1/layers/{name}/reset",        bnd_state_reset,     LAYER | MUTATES },
	{ "GET",    "/v1/layers/{name}/history",      bnd_history_get,     LAYER },
	{ "POST",   "/v1/layers/{name}/calibration",  bnd_calibration_post,   LAYER | MUTATES | BODY | NPY },
	{ "GET",    "/v1/layers/{name}/calibration",  bnd_calibration_get,    LAYER },
	{ "DELETE", "/v1/layers/{name}/calibration",  bnd_calibration_delete, LAYER | MUTATES },
	{ "POST",   "/v1/layers/{name}/calibration/commit", bnd_calibration_commit, LAYER | MUTATES | BODY },
	{ "POST",   "/v1/layers/{name}/backward",     bnd_ops_backward,    LAYER | BODY },
	{ "GET",    "/v1/layers/{name}/folded",       bnd_ops_folded,      LAYER },
	{ "POST",   "/v1/import",                     bnd_models_import,   MUTATES | BODY | BINARY },
	{ "GET",    "/v1/export",                     bnd_models_export,   0 },
};

const size_t bnd_routes_count = sizeof(bnd_routes) / sizeof(bnd_routes[0]);
