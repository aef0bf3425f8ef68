#include "crash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "instance.h"

static int journal_fd = -1;

/* Appends `s` to buf (of `size`) at *n; async-signal-safe (no stdio). */
static void put(char *buf, size_t size, size_t *n, const char *s)
{
    while (s && *s && *n + 1 < size)
        buf[(*n)++] = *s++;
}

static void put_num(char *buf, size_t size, size_t *n, unsigned long v)
{
    char digits[24];
    int i = 0;
    do {
        digits[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i < (int)sizeof digits);
    while (i > 0 && *n + 1 < size)
        buf[(*n)++] = digits[--i];
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV:
        return "SIGSEGV (invalid memory access)";
    case SIGBUS:
        return "SIGBUS (bad memory access)";
    case SIGILL:
        return "SIGILL (illegal instruction)";
    case SIGFPE:
        return "SIGFPE (arithmetic error)";
    case SIGABRT:
        return "SIGABRT (abort)";
    default:
        return "fatal signal";
    }
}

static void on_fatal(int sig)
{
    int saved = errno;
    char buf[1024];
    size_t n = 0;
    const ph_frame *f = ph_frame_current();
    const ph_instance *inst = f ? f->inst : NULL;
    /* The build that was running: a reload's new build in prepare is not inst->cur yet. */
    const ph_version *ver = f && f->ver ? f->ver : inst ? inst->cur : NULL;
    const ph_manifest *m = ver && ver->manifest ? ver->manifest : inst ? inst->manifest : NULL;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    put_num(buf, sizeof buf, &n, (unsigned long)ts.tv_sec);
    put(buf, sizeof buf, &n, " plughost: ");
    put(buf, sizeof buf, &n, signal_name(sig));
    if (inst) {
        put(buf, sizeof buf, &n, " in package '");
        put(buf, sizeof buf, &n, m ? m->name : "?");
        put(buf, sizeof buf, &n, "' ");
        put(buf, sizeof buf, &n, m ? m->version_text : "");
        put(buf, sizeof buf, &n, " (build ");
        put(buf, sizeof buf, &n, ver && ver->module ? ver->module->hash : "?");
        put(buf, sizeof buf, &n, "), instance '");
        put(buf, sizeof buf, &n, inst->name);
        put(buf, sizeof buf, &n, "', in ");
        put(buf, sizeof buf, &n, f->what ? f->what : "package code");
        put(buf, sizeof buf, &n,
            "; the host stops: fix the package (run it under gdb or ASan), "
            "then start the host again\n");
    } else {
        put(buf, sizeof buf, &n, " in the host itself, outside package code; please report it\n");
    }
    ssize_t w = write(STDERR_FILENO, buf, n);
    if (journal_fd >= 0)
        w = write(journal_fd, buf, n);
    (void)w;
    errno = saved;
    /* SA_RESETHAND restored the default: re-raise to end with the real signal. */
    raise(sig);
}

int ph_crash_install(const char *journal)
{
    if (journal) {
        journal_fd = open(journal, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (journal_fd < 0)
            return ph_error_set(PH_EIO, "cannot open the crash journal %s: %s", journal,
                                strerror(errno));
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    return 0;
}

int ph_crash_count(const char *journal, const char *pkg, const char *build, long window_s)
{
    FILE *f = fopen(journal, "r");
    if (!f)
        return 0;
    char *line = NULL, *needle = NULL;
    size_t cap = 0;
    int n = 0;
    time_t now = time(NULL);
    if (asprintf(&needle, " in package '%s' ", pkg) < 0)
        needle = NULL;
    char *bneedle = NULL;
    if (asprintf(&bneedle, "(build %s)", build) < 0)
        bneedle = NULL;
    while (needle && bneedle && getline(&line, &cap, f) > 0) {
        char *end;
        long t = strtol(line, &end, 10);
        if (end == line || now - t > window_s)
            continue;
        char *at = strstr(line, needle);
        if (at && strstr(at, bneedle))
            n++;
    }
    free(line);
    free(needle);
    free(bneedle);
    fclose(f);
    return n;
}
