/*
 * Scanner fixture: built without -fvisibility=hidden. With CLASH it defines
 * json_loads, a function the host has (jansson): its own call to it would
 * run the host's. Without, it exports harmless extra names.
 */
#include <stddef.h>

#include <plughost/sdk.h>

#ifdef CLASH
void *json_loads(const char *text, size_t flags, void *error);
void *json_loads(const char *text, size_t flags, void *error)
{
    (void)text;
    (void)flags;
    (void)error;
    return NULL;
}
#endif

int extra_one(void);
int extra_one(void)
{
    return 1;
}
int extra_two;

static int64_t one(ph_ctx *ctx)
{
    (void)ctx;
    return extra_one();
}

static const ph_method methods[] = {
    PH_METHOD0(one, PH_I64),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("exports", methods)));
