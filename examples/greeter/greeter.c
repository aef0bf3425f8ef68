/*
 * greeter: one package calling another it depends on. Every call goes
 * through the host router with JSON arguments, exactly like a call from the
 * CLI or HTTP; errors of the callee pass on to our caller.
 */
#include <stdio.h>
#include <string.h>

#include <plughost/sdk.h>

/* hello's greet for `name`: a string the caller frees with ph_free, or NULL (error set). */
static char *greet(ph_ctx *ctx, const char *name)
{
    char address[128];
    ph_json *args, *out = NULL;
    char *text = NULL;
    snprintf(address, sizeof address, "%s.hello.greet", ph_param(ctx, "hello_instance"));
    args = ph_json_object(ctx);
    ph_json_set(ctx, args, "name", ph_json_new_str(ctx, name));
    if (ph_call(ctx, address, args, &out) == 0) {
        const char *s = ph_json_str(ctx, out);
        size_t n = s ? strlen(s) + sizeof " Welcome to plughost." : 0;
        if (!s)
            ph_error(ctx, "bad_reply", "%s returned no string", address);
        else if ((text = ph_alloc(ctx, n)) != NULL)
            snprintf(text, n, "%s Welcome to plughost.", s);
    }
    ph_json_free(ctx, out);
    ph_json_free(ctx, args);
    return text;
}

/* "Hello, Ada! Welcome to plughost." -- the result is owned by the host. */
static char *welcome(ph_ctx *ctx, const char *name)
{
    return greet(ctx, name);
}

/* JSON in (an array of names, borrowed), JSON out (an array of welcomes). */
static ph_json *welcome_all(ph_ctx *ctx, const ph_json *names)
{
    ph_json *out;
    size_t i, n;
    if (ph_json_kind_of(ctx, names) != PH_JSON_ARRAY) {
        ph_error_status(ctx, 422, "not_an_array", "names must be an array of strings");
        return NULL;
    }
    out = ph_json_array(ctx);
    n = ph_json_len(ctx, names);
    for (i = 0; i < n; i++) {
        const char *name = ph_json_str(ctx, ph_json_at(ctx, names, i));
        char *text;
        if (!name) {
            ph_json_free(ctx, out);
            ph_error_status(ctx, 422, "not_a_string", "names[%zu] is not a string", i);
            return NULL;
        }
        text = greet(ctx, name);
        if (!text) {
            ph_json_free(ctx, out); /* hello's error passes on to our caller */
            return NULL;
        }
        ph_json_push(ctx, out, ph_json_new_str(ctx, text));
        ph_free(ctx, text);
    }
    return out;
}

static const ph_method greeter_methods[] = {
    PH_METHOD(welcome, PH_STR, PH_ARG("name", PH_STR)),
    PH_METHOD(welcome_all, PH_JSON, PH_ARG("names", PH_JSON)),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("greeter", greeter_methods)));
