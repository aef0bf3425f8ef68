/*
 * calc: one method per supported type, JSON in/out, and errors. Every error
 * here is about the caller's input, so each says so with its HTTP status:
 * 422 (RFC 9110: a well-formed request that cannot be processed).
 */
#include <math.h>
#include <string.h>

#include <plughost/sdk.h>

static int64_t add(ph_ctx *ctx, int64_t a, int64_t b)
{
    int64_t sum;
    /* Signed overflow is undefined in C: say so instead. */
    if (__builtin_add_overflow(a, b, &sum))
        return ph_error_status(ctx, 422, "overflow",
                               "%lld + %lld does not fit in a 64-bit integer", (long long)a,
                               (long long)b);
    return sum;
}

static double divide(ph_ctx *ctx, double a, double b)
{
    if (b == 0.0)
        return ph_error_status(ctx, 422, "divide_by_zero", "cannot divide %g by zero", a);
    return a / b;
}

static int negate(ph_ctx *ctx, int value)
{
    (void)ctx;
    return !value;
}

/* Strings in are borrowed; the string out is allocated with ph_alloc. */
static char *upper(ph_ctx *ctx, const char *text)
{
    char *out = ph_strdup(ctx, text);
    for (char *p = out; p && *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    return out;
}

/* JSON in (borrowed), JSON out (built with ph_json_*; the host takes it). */
static ph_json *stats(ph_ctx *ctx, const ph_json *numbers)
{
    if (ph_json_kind_of(ctx, numbers) != PH_JSON_ARRAY) {
        ph_error_status(ctx, 422, "not_an_array", "numbers must be an array of numbers");
        return NULL;
    }
    size_t n = ph_json_len(ctx, numbers);
    double sum = 0, min = INFINITY, max = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        const ph_json *v = ph_json_at(ctx, numbers, i);
        ph_json_kind k = ph_json_kind_of(ctx, v);
        if (k != PH_JSON_INT && k != PH_JSON_REAL) {
            ph_error_status(ctx, 422, "not_a_number", "numbers[%zu] is not a number", i);
            return NULL;
        }
        double d = ph_json_f64(ctx, v);
        sum += d;
        min = d < min ? d : min;
        max = d > max ? d : max;
    }
    ph_json *out = ph_json_object(ctx);
    ph_json_set(ctx, out, "count", ph_json_new_i64(ctx, (int64_t)n));
    ph_json_set(ctx, out, "sum", ph_json_new_f64(ctx, sum));
    if (n) {
        ph_json_set(ctx, out, "min", ph_json_new_f64(ctx, min));
        ph_json_set(ctx, out, "max", ph_json_new_f64(ctx, max));
        ph_json_set(ctx, out, "mean", ph_json_new_f64(ctx, sum / (double)n));
    }
    return out;
}

/* Echoes any JSON value back: structured data round-trips unchanged. */
static ph_json *echo(ph_ctx *ctx, const ph_json *value)
{
    return ph_json_copy(ctx, value);
}

static void nothing(ph_ctx *ctx)
{
    (void)ctx;
}

static const ph_method math_methods[] = {
    PH_METHOD(add, PH_I64, PH_ARG("a", PH_I64), PH_ARG("b", PH_I64)),
    PH_METHOD(divide, PH_F64, PH_ARG("a", PH_F64), PH_ARG("b", PH_F64)),
    PH_METHOD(negate, PH_BOOL, PH_ARG("value", PH_BOOL)),
    PH_METHOD(stats, PH_JSON, PH_ARG("numbers", PH_JSON)),
};

static const ph_method text_methods[] = {
    PH_METHOD(upper, PH_STR, PH_ARG("text", PH_STR)),
    PH_METHOD(echo, PH_JSON, PH_ARG("value", PH_JSON)),
    PH_METHOD0(nothing, PH_VOID),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("math", math_methods), PH_ACTOR("text", text_methods)));
