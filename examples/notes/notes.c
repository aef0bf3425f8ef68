/*
 * notes: the OpenACS "Notes" package on plughost.
 *
 * Two models stored by the host (no SQL here): `note` and `comment`, each
 * with a generated CRUD actor (notes.note.new, .get, .set, .delete, .list,
 * .count). A validate hook keeps titles sane; the `board` actor shows a
 * package calling its own CRUD actor through the router and reading its
 * database directly.
 *
 *   plughost call --local -c examples/host.ini notes.note.new title=hello
 *   plughost call --local -c examples/host.ini notes.note.list pinned=true order=-created
 *   plughost call --local -c examples/host.ini notes.board.pin id=1
 *
 * Version 2.0.0 renamed the field `body` to `content`
 * (sql/upgrade-1.0.0-2.0.0.sql). The tests build version 1.0.0 from this
 * same file with NOTES_V1 defined (tests/packages/model_notes_v1).
 */
#include <plughost/sdk.h>
#include <stdlib.h>

#ifdef NOTES_V1
#define NOTES_TEXT_FIELD "body"
#else
#define NOTES_TEXT_FIELD "content"
#endif

/* Refuses blank titles and titles longer than the max_title parameter. */
static int note_validate(ph_ctx *ctx, const char *op, const ph_json *record)
{
    if (op[0] == 'd') /* delete: nothing to check */
        return 0;
    const char *title = ph_json_str(ctx, ph_json_get(ctx, record, "title"));
    size_t len = ph_json_len(ctx, ph_json_get(ctx, record, "title"));
    const char *max_text = ph_param(ctx, "max_title");
    size_t max = max_text ? (size_t)strtoul(max_text, NULL, 10) : 200;
    size_t blank = 0;
    while (title && (title[blank] == ' ' || title[blank] == '\t'))
        blank++;
    if (!title || blank == len)
        return ph_error(ctx, "blank_title", "a note needs a title that is not blank");
    if (len > max)
        return ph_error(ctx, "title_too_long",
                        "the title has %zu bytes; at most %zu are allowed (parameter max_title)",
                        len, max);
    return 0;
}

static void note_written(ph_ctx *ctx, const char *op, const ph_json *record)
{
    ph_log(ctx, PH_LOG_DEBUG, "note %lld: %s",
           (long long)ph_json_i64(ctx, ph_json_get(ctx, record, "id")), op);
}

/* board.pin(id): pins a note through the generated CRUD actor. */
static ph_json *pin(ph_ctx *ctx, int64_t id)
{
    char address[160];
    ph_json *args = ph_json_object(ctx), *out = NULL;
    ph_json_set(ctx, args, "id", ph_json_new_i64(ctx, id));
    ph_json_set(ctx, args, "pinned", ph_json_new_bool(ctx, 1));
    /* the instance may run under any name: address our own instance */
    const char *self = ph_instance_name(ctx);
    size_t n = 0;
    for (; self[n] && n < sizeof address - 16; n++)
        address[n] = self[n];
    const char *rest = ".note.set";
    for (size_t i = 0; rest[i]; i++)
        address[n++] = rest[i];
    address[n] = 0;
    ph_call(ctx, address, args, &out); /* on failure its error is passed on */
    ph_json_free(ctx, args);
    return out;
}

/* board.summary(): counts through SQL on the instance database. */
static ph_json *summary(ph_ctx *ctx)
{
    ph_json *rows = NULL;
    if (ph_db_query(ctx,
                    "SELECT count(*) AS notes, coalesce(sum(pinned), 0) AS pinned, "
                    "count(DISTINCT owner) AS owners FROM note",
                    NULL, &rows) != 0)
        return NULL;
    ph_json *first = ph_json_copy(ctx, ph_json_at(ctx, rows, 0));
    ph_json_free(ctx, rows);
    return first;
}

static const ph_method board_methods[] = {
    PH_METHOD_EX("pin", pin, PH_JSON, 0, "Pins a note (through notes.note.set).",
                 PH_ARG("id", PH_I64)),
    PH_METHOD0_EX("summary", summary, PH_JSON, 0, "How many notes, pinned notes and owners."),
};

static const ph_field note_fields[] = {
    PH_FIELD("title", PH_TEXT, PH_REQUIRED),
    PH_FIELD(NOTES_TEXT_FIELD, PH_TEXT, 0),
    PH_FIELD("pinned", PH_BOOL, PH_INDEXED | PH_DEFAULT("false")),
    PH_FIELD("owner", PH_TEXT, PH_INDEXED),
};

static const ph_field comment_fields[] = {
    PH_FIELD_REF("note", "note", PH_REQUIRED),
    PH_FIELD("text", PH_TEXT, PH_REQUIRED),
};

PH_PACKAGE(.actors = PH_ACTORS(PH_ACTOR("board", board_methods)),
           .models = PH_MODELS(PH_MODEL_EX("note", note_fields, 0, note_validate, note_written),
                               PH_MODEL("comment", comment_fields)));
