#include "localsock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

int ph_localsock_name(const char *path, char *buf, size_t n, int *dirfd)
{
    *dirfd = -1;
    if (strlen(path) < n) {
        snprintf(buf, n, "%s", path);
        return 0;
    }
    /* Too long for sun_path: through the directory, which the kernel resolves itself. */
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return ph_error_set(PH_ENOMEM, "out of memory");
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int e = errno;
    free(dir);
    if (fd < 0)
        return ph_error_set(PH_EIO, "cannot open the directory of the local socket %s: %s", path,
                            ph_strerror(e));
    int w = snprintf(buf, n, "/proc/self/fd/%d/%s", fd, slash ? slash + 1 : path);
    if (w < 0 || (size_t)w >= n) {
        close(fd);
        return ph_error_set(PH_EIO,
                            "the file name of the local socket %s is too long; set [http] "
                            "socket in host.ini to a shorter path",
                            path);
    }
    *dirfd = fd;
    return 0;
}

/* The address of `path` (*dirfd as ph_localsock_name). */
static int address(const char *path, struct sockaddr_un *sa, int *dirfd)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    return ph_localsock_name(path, sa->sun_path, sizeof sa->sun_path, dirfd);
}

/* 1: a host listens at sa; 0: nobody (a stale file); negative: cannot tell (errno in *err). */
static int listening(const struct sockaddr_un *sa, int *err)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    int rc = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
    *err = errno;
    close(fd);
    if (rc == 0)
        return 1;
    return *err == ECONNREFUSED ? 0 : -1;
}

/*
 * The socket files this process made, by path, with the inode each got at
 * bind: at close a file is removed only if it is still that inode, never
 * the socket of a host that took the path over since.
 */
enum { MAX_OWNED = 64 };
static struct owned {
    char *path;
    dev_t dev;
    ino_t ino;
} owned[MAX_OWNED];
static pthread_mutex_t owned_mu = PTHREAD_MUTEX_INITIALIZER;

static void own(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    pthread_mutex_lock(&owned_mu);
    for (size_t i = 0; i < MAX_OWNED; i++)
        if (!owned[i].path && (owned[i].path = strdup(path))) {
            owned[i].dev = st.st_dev;
            owned[i].ino = st.st_ino;
            break;
        }
    pthread_mutex_unlock(&owned_mu);
}

/* Removes `path` if it is the socket file this process bound there (and forgets it). */
static void unlink_owned(const char *path)
{
    struct stat st;
    pthread_mutex_lock(&owned_mu);
    for (size_t i = 0; i < MAX_OWNED; i++) {
        if (!owned[i].path || strcmp(owned[i].path, path) != 0)
            continue;
        int found = lstat(path, &st) == 0;
        if (found && st.st_dev == owned[i].dev && st.st_ino == owned[i].ino)
            unlink(path);
        else if (found)
            ph_log_info("left the local socket %s in place: another host has made it since", path);
        free(owned[i].path);
        owned[i].path = NULL;
        break;
    }
    pthread_mutex_unlock(&owned_mu);
}

int ph_localsock_open(const char *path, int *out_fd)
{
    struct sockaddr_un sa;
    struct stat st;
    int dirfd = -1, fd = -1, err = 0, rc;

    *out_fd = -1;
    if (!path || !*path)
        return ph_error_set(PH_EINVAL, "no local socket path given");
    if ((rc = address(path, &sa, &dirfd)))
        return rc;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            rc = ph_error_set(PH_EIO,
                              "cannot create the local socket %s: the path is taken by a file "
                              "that is not a socket; move it away, or set [http] socket in "
                              "host.ini to another path (empty: no local socket)",
                              path);
            goto cleanup;
        }
        int live = listening(&sa, &err);
        if (live == 1) {
            rc = ph_error_set(PH_ECONFLICT,
                              "another host is running on the local socket %s; stop it first "
                              "(`plughost status` talks to it), or give this host another "
                              "data_dir or [http] socket in host.ini",
                              path);
            goto cleanup;
        }
        if (live < 0) {
            rc = ph_error_set(PH_EIO,
                              "cannot tell whether a host is running on the local socket %s: "
                              "%s; remove the file if no host uses it, or set [http] socket in "
                              "host.ini to another path",
                              path, ph_strerror(err));
            goto cleanup;
        }
        /* Nobody listens: left by a host that was killed. */
        if (unlink(path) != 0 && errno != ENOENT) {
            rc = ph_error_set(PH_EIO, "cannot replace the stale local socket %s: %s", path,
                              ph_strerror(errno));
            goto cleanup;
        }
        ph_log_info("replaced the stale local socket %s (left by a host that stopped)", path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc =
            ph_error_set(PH_EIO, "cannot create the local socket %s: %s", path, ph_strerror(errno));
        goto cleanup;
    }
    /*
     * Nobody can connect between bind and listen, so the file is made 0600
     * before anyone can reach it, without touching the process's umask.
     */
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        err = errno;
        rc = ph_error_set(PH_EIO,
                          "cannot create the local socket %s: %s; check that its directory "
                          "exists and is writable, or set [http] socket in host.ini (empty: no "
                          "local socket)",
                          path, ph_strerror(err));
        goto cleanup;
    }
    if (chmod(path, 0600) != 0 || listen(fd, 128) != 0) {
        err = errno;
        unlink(path);
        rc = ph_error_set(PH_EIO, "cannot listen on the local socket %s: %s", path,
                          ph_strerror(err));
        goto cleanup;
    }
    own(path);
    *out_fd = fd;
    fd = -1;
    rc = 0;
cleanup:
    if (fd >= 0)
        close(fd);
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

bool ph_localsock_peer_trusted(int fd, long *peer_uid)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (peer_uid)
        *peer_uid = -1;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof cr)
        return false;
    if (peer_uid)
        *peer_uid = (long)cr.uid;
    return cr.uid == 0 || cr.uid == geteuid();
}

void ph_localsock_close(const char *path, int fd)
{
    if (fd >= 0)
        close(fd);
    if (path && *path)
        unlink_owned(path);
}
