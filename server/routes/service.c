/*
 * routes/service.c: the dashboard, /livez, /healthz, /readyz, /metrics and
 * /openapi.json.
 */
#include <string.h>

#include "errors.h"
#include "metrics.h"
#include "routes/routes.h"

static const struct bnd_file *find_file(const struct bnd_file *files, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(files[i].name, name) == 0)
			return &files[i];
	return NULL;
}

int bnd_service_index(struct bnd_request *req, struct bnd_response *res)
{
	const struct bnd_file *f = find_file(bnd_dashboard, bnd_dashboard_count, "index.html");

	(void)req;
	if (!f)
		return bnd_fail(res, -ENOENT, NULL, "this build has no dashboard");
	res->status = 200;
	res->file = f;
	res->content_type = "text/html; charset=utf-8";
	return 0;
}

int bnd_service_live(struct bnd_request *req, struct bnd_response *res)
{
	(void)req;
	bnd_json(res, 200);
	bn_buf_puts(&res->body, "{\"status\": \"ok\"}\n");
	return 0;
}

int bnd_service_ready(struct bnd_request *req, struct bnd_response *res)
{
	int rc = bnd_store_ping(req->d->store);

	if (rc == -EUCLEAN)
		return bnd_fail(res, rc, NULL, "the database is damaged (SQLite reported SQLITE_CORRUPT or "
				"SQLITE_NOTADB): stop batchnormd, run `batchnormd check`, and restore the latest backup");
	if (rc < 0)
		return bnd_fail(res, rc, NULL, "the store does not answer");
	bnd_json(res, 200);
	bn_buf_puts(&res->body, "{\"status\": \"ready\"}\n");
	return 0;
}

int bnd_service_metrics(struct bnd_request *req, struct bnd_response *res)
{
	res->status = 200;
	res->content_type = "text/plain; version=0.0.4; charset=utf-8";
	return bnd_metrics_write(&res->body, &req->d->registry) < 0 ?
		bnd_fail(res, -ENOMEM, NULL, "out of memory writing metrics") : 0;
}

int bnd_service_openapi(struct bnd_request *req, struct bnd_response *res)
{
	(void)req;
	if (bnd_openapi_count == 0)
		return bnd_fail(res, -ENOENT, NULL, "this build has no OpenAPI document");
	res->status = 200;
	res->file = &bnd_openapi[0];
	res->content_type = "application/json";
	return 0;
}
