/*
 * Generated CRUD actors for declared models.
 *
 * For a model "note" of instance "notes" the actor "note" has:
 *   new    {field: value, ...}            -> the stored record
 *   get    {"id": N} (or [N])             -> the record
 *   set    {"id": N, field: value, ...}   -> the record after the partial update
 *   delete {"id": N} (or [N])             -> the record as it was
 *   list   {filters..., "order", "limit", "offset"}
 *                                         -> {"items": [...], "total", "limit", "offset"}
 *   count  {filters...}                   -> integer
 * A record is {"id", "created", "updated", field...}; created/updated are
 * Unix milliseconds kept by the host.
 *
 * Filters: "field": value (equality; null means IS NULL), "field.op": value
 * or "field": {"op": value, ...} with op one of eq ne lt le gt ge (also gte
 * lte) and like (text fields). "order": "field", "-field", "field desc", or
 * a comma list / array of them. "limit" 0..1000 (default 100), "offset" >= 0.
 * Field and order names reach SQL only after matching the declared schema;
 * every value is bound.
 *
 * Errors: PH_EARGS (unknown field, wrong type, missing required field, bad
 * filter/order; the message names the field), PH_ECONFLICT (unique
 * violation, record still referenced), PH_ENOTFOUND (no such record),
 * PH_EPACKAGE (the model's validate hook refused; its word and message).
 */
#ifndef PH_HOST_CRUD_H
#define PH_HOST_CRUD_H

#include <jansson.h>

#include "instance.h"
#include "router.h"

/** Largest page `list` returns; larger limits are refused. */
#define PH_CRUD_MAX_LIMIT 1000
#define PH_CRUD_DEFAULT_LIMIT 100

/**
 * Adds, for every model of the instance's package (unless the model says
 * PH_NO_CRUD or the manifest disable_crud), an actor named after the model
 * with new/get/set/delete/list/count. The routes find the model's storage
 * through inst->store at call time (ph_store_attach must have run before
 * the first call).
 */
int ph_crud_add_routes(ph_routes *t, ph_instance *inst);

/**
 * Calls a CRUD method directly, without the router (tests, benchmarks,
 * embedding). `args` borrowed; *out owned by the caller. Same errors as
 * through the router, plus PH_ENOTFOUND for an unknown model or method.
 */
int ph_crud_call(ph_instance *inst, const char *model, const char *method, json_t *args,
                 json_t **out);

#endif
