/* Lifecycle fixture: a model whose later versions need an upgrade script. */
#include <plughost/sdk.h>

static const ph_field item_fields[] = {
    PH_FIELD("name", PH_TEXT, PH_REQUIRED),
    PH_FIELD("price", PH_INT, 0),
#ifdef WITH_NOTE
    PH_FIELD("note", PH_TEXT, 0),
#endif
};

PH_PACKAGE(.models = PH_MODELS(PH_MODEL("item", item_fields)));
