/*
 * Baseline for the CRUD-over-HTTP figures of bench/bench_http.sh: what a
 * hand-written C service would do for the notes example's REST paths, with
 * the same threading settings as bench_mhd_baseline (libmicrohttpd's
 * internal thread pool + epoll):
 *
 *   GET  /notes/models/note/ID   a prepared SELECT of the row, a jansson object
 *                                built from its columns, json_dumps, 200
 *   POST /notes/models/note      json_loadb of the body, `title` checked to be a
 *                                string of at most 200 bytes, a prepared INSERT
 *                                (autocommit), the new row dumped as above, 201
 *                                with Location
 *
 * The table and pragmas are the ones plughost's store uses for the notes
 * model (WAL, synchronous=FULL), and the records read and written have the
 * same fields and JSON shape as plughost's answers. Each pool thread has its
 * own SQLite connection and prepared statements, as such a service would.
 *
 *   bench_crud_http_baseline PORT DB_PATH [THREADS]   runs until SIGINT/SIGTERM
 *
 * On start the database gets one note (id 1) if it has none. Listens on
 * 127.0.0.1 only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sqlite3.h>

#include "mhd_serve.h"

#define MAX_BODY 65536
#define NOTE_PATH "/notes/models/note"

static const char *db_path;

static const char *const setup_sql =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
    "CREATE TABLE IF NOT EXISTS \"note\"(id INTEGER PRIMARY KEY AUTOINCREMENT, created INTEGER "
    "NOT NULL, updated INTEGER NOT NULL, \"title\" TEXT, \"content\" TEXT, \"pinned\" INTEGER "
    "DEFAULT 0, \"owner\" TEXT) STRICT;";

/* One connection and its statements per pool thread. */
typedef struct conn_db {
    sqlite3 *db;
    sqlite3_stmt *get, *ins;
} conn_db;

static _Thread_local conn_db tdb;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static conn_db *thread_db(void)
{
    if (tdb.db)
        return &tdb;
    if (sqlite3_open_v2(db_path, &tdb.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) ||
        sqlite3_busy_timeout(tdb.db, 5000) ||
        sqlite3_exec(tdb.db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", NULL, NULL,
                     NULL) ||
        sqlite3_prepare_v3(tdb.db,
                           "SELECT id, created, updated, title, content, pinned, owner "
                           "FROM \"note\" WHERE id=?1",
                           -1, SQLITE_PREPARE_PERSISTENT, &tdb.get, NULL) ||
        sqlite3_prepare_v3(tdb.db,
                           "INSERT INTO \"note\"(created, updated, title, content, pinned, owner) "
                           "VALUES(?1, ?1, ?2, ?3, ?4, ?5)",
                           -1, SQLITE_PREPARE_PERSISTENT, &tdb.ins, NULL)) {
        fprintf(stderr, "bench_crud_http_baseline: %s: %s\n", db_path, sqlite3_errmsg(tdb.db));
        exit(1);
    }
    return &tdb;
}

static json_t *column_or_null(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return json_null();
    return json_stringn((const char *)sqlite3_column_text(st, i),
                        (size_t)sqlite3_column_bytes(st, i));
}

/* The row with `id` as JSON text (malloc'd), or NULL when there is none. */
static char *row_json(conn_db *c, int64_t id)
{
    char *out = NULL;
    sqlite3_bind_int64(c->get, 1, id);
    if (sqlite3_step(c->get) == SQLITE_ROW) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(sqlite3_column_int64(c->get, 0)));
        json_object_set_new(o, "created", json_integer(sqlite3_column_int64(c->get, 1)));
        json_object_set_new(o, "updated", json_integer(sqlite3_column_int64(c->get, 2)));
        json_object_set_new(o, "title", column_or_null(c->get, 3));
        json_object_set_new(o, "content", column_or_null(c->get, 4));
        json_object_set_new(o, "pinned", json_boolean(sqlite3_column_int(c->get, 5)));
        json_object_set_new(o, "owner", column_or_null(c->get, 6));
        out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
    }
    sqlite3_reset(c->get);
    return out;
}

static enum MHD_Result answer(struct MHD_Connection *mc, unsigned status, char *body,
                              const char *location)
{
    static const char fail[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    struct MHD_Response *r =
        body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(sizeof fail - 1, (void *)fail,
                                               MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (location)
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
    enum MHD_Result ret = MHD_queue_response(mc, body ? status : 500, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result refuse(struct MHD_Connection *mc, unsigned status, const char *msg)
{
    char *b = NULL;
    if (asprintf(&b, "{\"error\":{\"code\":\"bad_request\",\"message\":\"%s\"}}", msg) < 0)
        b = NULL;
    return answer(mc, status, b, NULL);
}

static enum MHD_Result get_note(struct MHD_Connection *mc, const char *id_text)
{
    char *end;
    long long id = strtoll(id_text, &end, 10);
    if (*end || end == id_text)
        return refuse(mc, 400, "the id is not an integer");
    char *body = row_json(thread_db(), id);
    return body ? answer(mc, 200, body, NULL) : refuse(mc, 404, "no such note");
}

static enum MHD_Result new_note(struct MHD_Connection *mc, const char *data, size_t len)
{
    json_error_t err;
    json_t *in = json_loadb(data, len, 0, &err);
    json_t *title = in ? json_object_get(in, "title") : NULL;
    if (!json_is_string(title) || json_string_length(title) > 200) {
        json_decref(in);
        return refuse(mc, 400, "title must be a string of at most 200 bytes");
    }
    conn_db *c = thread_db();
    json_t *content = json_object_get(in, "content"), *owner = json_object_get(in, "owner");
    sqlite3_bind_int64(c->ins, 1, now_ms());
    sqlite3_bind_text(c->ins, 2, json_string_value(title), (int)json_string_length(title),
                      SQLITE_TRANSIENT);
    if (json_is_string(content))
        sqlite3_bind_text(c->ins, 3, json_string_value(content), -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(c->ins, 3);
    sqlite3_bind_int(c->ins, 4, json_is_true(json_object_get(in, "pinned")));
    if (json_is_string(owner))
        sqlite3_bind_text(c->ins, 5, json_string_value(owner), -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(c->ins, 5);
    int rc = sqlite3_step(c->ins);
    sqlite3_reset(c->ins);
    sqlite3_clear_bindings(c->ins);
    json_decref(in);
    if (rc != SQLITE_DONE)
        return refuse(mc, 500, "the insert failed");
    int64_t id = sqlite3_last_insert_rowid(c->db);
    char location[64];
    snprintf(location, sizeof location, NOTE_PATH "/%" PRId64, id);
    return answer(mc, 201, row_json(c, id), location);
}

typedef struct upload {
    size_t len, cap;
    char *data;
} upload;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
    (void)cls, (void)version;
    upload *u = *con_cls;
    if (!u) {
        if (!(u = calloc(1, sizeof *u))) /* a few bytes: the body buffer grows as it comes */
            return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (*data_size) {
        if (u->len + *data_size > MAX_BODY)
            return MHD_NO;
        if (u->len + *data_size > u->cap) {
            size_t cap = u->len + *data_size + 256;
            char *d = realloc(u->data, cap);
            if (!d)
                return MHD_NO;
            u->data = d, u->cap = cap;
        }
        memcpy(u->data + u->len, data, *data_size);
        u->len += *data_size;
        *data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0 && strncmp(url, NOTE_PATH "/", sizeof NOTE_PATH) == 0)
        return get_note(mc, url + sizeof NOTE_PATH);
    if (strcmp(method, "POST") == 0 && strcmp(url, NOTE_PATH) == 0)
        return new_note(mc, u->data ? u->data : "", u->len);
    return refuse(mc, 404, "no such path");
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)mc, (void)toe;
    upload *u = *con_cls;
    if (u)
        free(u->data);
    free(u);
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT DB_PATH [THREADS]\n", argv[0]);
        return 2;
    }
    unsigned port = (unsigned)atoi(argv[1]), threads = argc > 3 ? (unsigned)atoi(argv[3]) : 4;
    db_path = argv[2];
    /* the table, and one note to read */
    sqlite3 *db = NULL;
    char *msg = NULL;
    if (sqlite3_open(db_path, &db) || sqlite3_exec(db, setup_sql, NULL, NULL, &msg) ||
        sqlite3_exec(db,
                     "INSERT INTO \"note\"(created, updated, title) SELECT 0, 0, 'bench' "
                     "WHERE NOT EXISTS (SELECT 1 FROM \"note\")",
                     NULL, NULL, &msg)) {
        fprintf(stderr, "bench_crud_http_baseline: %s: %s\n", db_path,
                msg ? msg : sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_close(db);
    return ph_bench_mhd_serve("bench_crud_http_baseline", port, threads, on_request, on_completed);
}
