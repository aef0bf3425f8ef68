/*
 * Distribution archives: `plughost pack DIR` writes NAME-VERSION.phpkg, a
 * gzip-compressed POSIX tar (pax) archive of a package directory, and
 * `plughost install ARCHIVE` checks one before anything of it is unpacked
 * (APM's .apm distribution files; Debian's signed Release files).
 *
 * Members, in this order:
 *   .plughost/files      what the archive holds, and the only thing signed:
 *                          plughost-archive 1
 *                          package NAME VERSION
 *                          file SHA256HEX SIZE MODE PATH     (one per file, sorted by PATH)
 *   .plughost/signature  optional: "ed25519 KEYNAME BASE64" (Ed25519, RFC 8032, over
 *                        the exact bytes of .plughost/files)
 *   every listed file    package.ini, the library, sql/, www/, wiki/, lib/
 *
 * Keys (libsodium): a secret key file "plughost-ed25519-secret NAME BASE64\n"
 * (mode 0600) and its public half, written into host.ini's [trust] section
 * as `NAME = ed25519:BASE64` (RFC 4648 base64 of the 32-byte key).
 *
 * Checks on install, all before the first byte is written: the signature
 * by a key [trust] lists (an unsigned archive only with [trust]
 * allow_unsigned = yes); every path relative, without "..", "." or empty
 * segments or control characters; only regular files and directories (no
 * links, devices or FIFOs); every file listed once, with the listed size
 * and SHA-256; every shared library an ELF object for this machine
 * (elfcheck.h). Sizes are capped (a compression bomb is refused). Files
 * are then written into a fresh staging directory under the data
 * directory and hashed again as they are written.
 */
#ifndef PH_HOST_DIST_H
#define PH_HOST_DIST_H

#include <stdbool.h>

#include "config.h"

/** The file name suffix of a distribution archive. */
#define PH_DIST_SUFFIX ".phpkg"

/**
 * Writes a new Ed25519 key pair named `name` ([A-Za-z0-9._-], 1-64
 * characters) into directory `dir`: NAME.secret (mode 0600) and NAME.pub
 * holding the host.ini line. *pub_line (caller frees) is that line,
 * "NAME = ed25519:BASE64". Never overwrites a file. 0, PH_EINVAL (name),
 * PH_EIO (naming the file), PH_ENOMEM.
 */
int ph_dist_keygen(const char *name, const char *dir, char **pub_line);

/**
 * Packs the package directory `pkg_dir` (its package.ini, library, sql/,
 * www/, wiki/ and lib/) into `out_dir`/NAME-VERSION.phpkg, signed with the
 * secret key file `secret_key` when not NULL (it must not be readable by
 * group or others). Symbolic links and special files in the package are
 * refused, naming them. *out_path (caller frees) is the archive written.
 * 0, PH_EMANIFEST, PH_EINVAL, PH_EPERM (key file mode), PH_EIO, PH_ENOMEM,
 * with a message naming the file.
 */
int ph_dist_pack(const char *pkg_dir, const char *out_dir, const char *secret_key, char **out_path);

/** True if `path` names a distribution archive (by its suffix). */
bool ph_dist_is(const char *path);

/**
 * Checks the archive at `path` against cfg->trust (see the header
 * comment), then unpacks it into a new directory under cfg->data_dir.
 * *staging (caller frees, and removes with ph_dist_discard) is that
 * directory, which holds package.ini at its top; *name and *version
 * (caller frees; either may be NULL) are what the signed list says.
 * Nothing is written when a check fails. 0, or PH_EPERM (signature, trust,
 * a path trick, a link or device, a file not matching its signed hash, a
 * library that is no ELF object for this machine), PH_ETOOBIG, PH_EIO,
 * PH_ENOMEM, with a message naming the archive and the member.
 */
int ph_dist_unpack(const ph_config *cfg, const char *path, char **staging, char **name,
                   char **version);

/** Removes a staging directory made by ph_dist_unpack; accepts NULL. */
void ph_dist_discard(const char *staging);

#endif
