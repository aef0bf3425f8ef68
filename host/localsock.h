/*
 * The host's local socket: a Unix stream socket on which the host serves
 * the same HTTP as on TCP to the `plughost` CLI of this machine, so that
 * management needs no token over the network. The socket file is mode 0600
 * and each peer is checked with SO_PEERCRED: root and the host's own user
 * are trusted (as if they carried the admin token), anyone else is refused.
 *
 * Default path "<data_dir>/plughost.sock" ([http] socket; empty: none; the
 * systemd unit uses /run/plughost/plughost.sock). A socket file left by a
 * host that was killed is replaced; one a live host listens on is not.
 * Paths longer than a sockaddr_un holds are reached through the directory
 * (/proc/self/fd/N/NAME), so any data_dir works.
 */
#ifndef PH_HOST_LOCALSOCK_H
#define PH_HOST_LOCALSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/**
 * Creates, binds (mode 0600) and listens on the socket at `path`. A stale
 * socket file (nobody listens) is replaced. Sets *out_fd (close-on-exec).
 * Errors: PH_ECONFLICT ("another host is running on the local socket PATH;
 * ..."), PH_EIO (the path is taken by something else, cannot bind: the
 * message names the path and [http] socket), PH_ENOMEM.
 */
int ph_localsock_open(const char *path, int *out_fd);

/**
 * Whether the peer of connected local socket `fd` is trusted: uid 0 or the
 * uid of this process. *peer_uid (may be NULL) gets the peer's uid, or -1
 * when it cannot be read (then not trusted).
 */
bool ph_localsock_peer_trusted(int fd, long *peer_uid);

/**
 * Closes `fd` (if >= 0) and removes the socket file at `path` if it is
 * still the one ph_localsock_open bound there (same inode): a socket that
 * another host made at that path since is left in place.
 */
void ph_localsock_close(const char *path, int fd);

/**
 * A name for `path` that fits a sockaddr_un (`buf`, `n` bytes): the path
 * itself, or "/proc/self/fd/N/NAME" through its directory, opened as
 * *dirfd (close it after connecting; -1 when none was needed). 0, or
 * PH_EIO when the directory cannot be opened or the name is too long.
 */
int ph_localsock_name(const char *path, char *buf, size_t n, int *dirfd);

#endif
