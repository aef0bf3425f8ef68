/*
 * Issue 8's `shop`, built at several releases (SHOP_RELEASE) for
 * e2e_migrate.sh: 1.0.0 stores prices in units; 1.1.0 keeps the schema and
 * ships a script turning them into cents; 1.2.0 adds a nullable `note`
 * (no script). SHOP_RENAME: a 1.2.0 that renames `name` to `title`, which
 * needs a script it does not ship.
 */
#include <plughost/sdk.h>

#if defined(SHOP_RENAME)
static const ph_field item_fields[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD("price", PH_INT, 0),
};
#elif SHOP_RELEASE >= 120
static const ph_field item_fields[] = {
    PH_FIELD("name", PH_TEXT, PH_REQUIRED),
    PH_FIELD("price", PH_INT, 0),
    PH_FIELD("note", PH_TEXT, 0),
};
#else
static const ph_field item_fields[] = {
    PH_FIELD("name", PH_TEXT, PH_REQUIRED),
    PH_FIELD("price", PH_INT, 0),
};
#endif

PH_PACKAGE(.models = PH_MODELS(PH_MODEL("item", item_fields)));
