#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * One message buffer per thread. Messages longer than this are cut with
 * "..." — they are diagnostics, never data.
 */
#define PH_ERROR_MAX 2048
#define PH_WORD_MAX 64

static _Thread_local int last_code;
static _Thread_local char last_msg[PH_ERROR_MAX];
static _Thread_local char last_word[PH_WORD_MAX];
static _Thread_local unsigned last_status; /* a chosen HTTP status, 0 if none */

const char *ph_error_word(int code)
{
    switch (code) {
#define PH_ERR_WORD_(name, value, word, text, http)                                                \
    case value:                                                                                    \
        return word;
        PH_ERRORS(PH_ERR_WORD_)
#undef PH_ERR_WORD_
    }
    return "unknown";
}

const char *ph_error_text(int code)
{
    switch (code) {
#define PH_ERR_TEXT_(name, value, word, text, http)                                                \
    case value:                                                                                    \
        return text;
        PH_ERRORS(PH_ERR_TEXT_)
#undef PH_ERR_TEXT_
    }
    return "unknown error";
}

static void store_message(const char *fmt, va_list ap)
{
    int n = vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    if (n >= (int)sizeof last_msg)
        memcpy(last_msg + sizeof last_msg - 4, "...", 4);
}

int ph_error_set_wordv(int code, const char *word, const char *fmt, va_list ap)
{
    last_code = code;
    last_status = 0;
    snprintf(last_word, sizeof last_word, "%s", word ? word : ph_error_word(code));
    if (fmt)
        store_message(fmt, ap);
    else
        snprintf(last_msg, sizeof last_msg, "%s", ph_error_text(code));
    return code;
}

int ph_error_set_word(int code, const char *word, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ph_error_set_wordv(code, word, fmt, ap);
    va_end(ap);
    return code;
}

int ph_error_setv(int code, const char *fmt, va_list ap)
{
    return ph_error_set_wordv(code, NULL, fmt, ap);
}

int ph_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ph_error_set_wordv(code, NULL, fmt, ap);
    va_end(ap);
    return code;
}

void ph_error_wrap(const char *fmt, ...)
{
    char prefix[PH_ERROR_MAX];
    char old[PH_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_msg, sizeof old);
    int n = snprintf(last_msg, sizeof last_msg, "%s: %s", prefix, old);
    if (n >= (int)sizeof last_msg)
        memcpy(last_msg + sizeof last_msg - 4, "...", 4);
}

const char *ph_error_last(void)
{
    return last_msg;
}
int ph_error_last_code(void)
{
    return last_code;
}
const char *ph_error_last_word(void)
{
    return last_word[0] ? last_word : ph_error_word(last_code);
}

void ph_error_clear(void)
{
    last_code = 0;
    last_status = 0;
    last_msg[0] = 0;
    last_word[0] = 0;
}

const char *ph_strerror(int e)
{
    static _Thread_local char buf[256];
    if (e != EMFILE && e != ENFILE)
        return strerror(e);
    snprintf(buf, sizeof buf, "%s: %s", strerror(e), PH_EMFILE_HINT);
    return buf;
}

unsigned ph_error_http_status(int code)
{
    switch (code) {
#define PH_ERR_HTTP_(name, value, word, text, http)                                                \
    case value:                                                                                    \
        return http;
        PH_ERRORS(PH_ERR_HTTP_)
#undef PH_ERR_HTTP_
    }
    return 500;
}

int ph_error_code_of_word(const char *word)
{
    static const struct {
        const char *word;
        int code;
    } words[] = {
#define PH_ERR_PAIR_(name, value, word, text, http) {word, value},
        PH_ERRORS(PH_ERR_PAIR_)
#undef PH_ERR_PAIR_
    };
    for (size_t i = 1; word && i < sizeof words / sizeof words[0]; i++)
        if (strcmp(words[i].word, word) == 0)
            return words[i].code;
    return 0;
}

int ph_error_code_of_http(unsigned status, const char *word)
{
    int code = ph_error_code_of_word(word);
    if (code && ph_error_http_status(code) == status)
        return code;
    if (status == 500) /* a word the host does not know: a package's own error */
        return PH_EPACKAGE;
    static const int order[] = {
#define PH_ERR_VALUE_(name, value, word, text, http) value,
        PH_ERRORS(PH_ERR_VALUE_)
#undef PH_ERR_VALUE_
    };
    for (size_t i = 1; i < sizeof order / sizeof order[0]; i++)
        if (ph_error_http_status(order[i]) == status)
            return order[i];
    return status >= 500 ? PH_EPACKAGE : PH_EARGS;
}

void ph_error_set_http_status(unsigned status)
{
    if (status >= 400 && status <= 599)
        last_status = status;
}

unsigned ph_error_last_http_status(void)
{
    return last_status ? last_status : ph_error_http_status(last_code);
}

unsigned ph_error_chosen_http_status(void)
{
    return last_status;
}
