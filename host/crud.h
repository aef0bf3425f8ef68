/* Generated CRUD actors for declared models. */
#ifndef PH_HOST_CRUD_H
#define PH_HOST_CRUD_H

#include "instance.h"
#include "router.h"

/**
 * Adds, for every model of the instance's package (unless the model says
 * PH_NO_CRUD or the manifest disable_crud), an actor named after the model
 * with new/get/set/delete/list/count.
 */
int ph_crud_add_routes(ph_routes *t, ph_instance *inst);

#endif
