/*
 * OpenAPI 3.1 description of what the host serves over HTTP, generated from
 * the declared method signatures and models of the running instances (no
 * hand-written spec to drift): one POST operation per method, the REST
 * operations of every model with a CRUD actor, and the host's /_/ routes.
 */
#ifndef PH_HOST_OPENAPI_H
#define PH_HOST_OPENAPI_H

#include <jansson.h>

#include "host.h"

/**
 * Builds the document. On success returns 0 and sets *out (caller owns it,
 * json_decref). PH_ENOMEM otherwise. Thread-safe.
 */
int ph_openapi_build(ph_host *host, json_t **out);

/** JSON Schema of a value of type `t` (new reference; NULL on allocation failure). */
json_t *ph_openapi_type_schema(ph_type t);

#endif
