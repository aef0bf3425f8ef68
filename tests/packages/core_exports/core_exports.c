/*
 * Fixture: exports more than its descriptor, as a package built without
 * -fvisibility=hidden does: json_loads (the host has it, from jansson: the
 * package's own call would run the host's) and extra_one.
 */
#include <stddef.h>

#include <plughost/sdk.h>

#define EXPORTED __attribute__((visibility("default")))

EXPORTED void *json_loads(const char *text, size_t flags, void *error);
EXPORTED int extra_one(void);

void *json_loads(const char *text, size_t flags, void *error)
{
    (void)text;
    (void)flags;
    (void)error;
    return NULL;
}

int extra_one(void)
{
    return json_loads("1", 0, NULL) == NULL;
}

static int64_t one(ph_ctx *ctx)
{
    (void)ctx;
    return extra_one();
}

static const ph_method methods[] = {
    PH_METHOD0(one, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("probe", methods)));
