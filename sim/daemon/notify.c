/* SPDX-License-Identifier: MIT */
/*
 * notify.c: systemd's readiness protocol (sd_notify(3)) written by hand, so
 * hvsimd needs no libsystemd: one datagram of "NAME=VALUE" lines to the
 * AF_UNIX socket named by $NOTIFY_SOCKET, a path ("/run/...") or an abstract
 * name ("@name": the '@' stands for the leading NUL, and the address is
 * exactly as long as the name). systemd's other forms (vsock:CID:PORT) are
 * refused: hvsimd never opens a vsock socket of the machine.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "server.h"

int notify_systemd(const char *state, char *err, size_t errlen)
{
    const char *name = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len;
    socklen_t salen;
    ssize_t n;
    int fd, rc = 1;

    if (name == NULL || name[0] == '\0')
        return 0;
    len = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || len >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "NOTIFY_SOCKET '%s': expected an absolute path or @abstract name of at most %zu bytes",
                 name, sizeof(sa.sun_path) - 1);
        return -EAFNOSUPPORT;
    }
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@') {
        sa.sun_path[0] = '\0';
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    } else {
        salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "NOTIFY_SOCKET %s: socket: %s", name, strerror(errno));
        return -errno;
    }
    n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
    if (n < 0) {
        rc = -errno;
        snprintf(err, errlen, "NOTIFY_SOCKET %s: %s", name, strerror(errno));
    }
    close(fd);
    return rc;
}
