/* Placeholder until the models work lands: no CRUD routes yet. */
#include "crud.h"

int ph_crud_add_routes(ph_routes *t, ph_instance *inst)
{
    (void)t;
    (void)inst;
    return 0;
}
