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

const char *ph_error_word(int code)
{
    switch (code) {
#define PH_ERR_WORD_(name, value, word, text)                                                      \
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
#define PH_ERR_TEXT_(name, value, word, text)                                                      \
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
