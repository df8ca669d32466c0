/* SPDX-License-Identifier: MIT */
/*
 * listeners.c: the folder of listener socket files, HVSIM_DIR/l/. A
 * listening process binds its socket there under a random name and tells the
 * daemon the name; connectors reach it by path. The folder is inside
 * HVSIM_DIR, which only the daemon's user can enter, so no other user can
 * see, squat or flood a listener (the abstract namespace, used before, is
 * open to every user of the machine).
 *
 * The daemon owns the folder: it creates it, removes a listener's file when
 * the bind goes (UNBIND, or its process went), and at start-up removes the
 * files nobody listens on any more. It does not remove them when it stops:
 * the processes keep listening and register again with the next daemon.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server_int.h"

/* 1 when nothing listens on the socket file (a connect is refused). */
static int stale(const char *dir, const char *name)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd, r;

    if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s/%s", dir, HVSIM_LISTENER_DIR, name) >=
        (int)sizeof(sa.sun_path))
        return 0;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return 0;
    r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    r = r < 0 && errno == ECONNREFUSED;
    close(fd);
    return r;
}

/* Remove the files of listeners that died with no daemon to see it. Only
 * names of the library's form are touched. */
static void sweep(struct server *s)
{
    DIR *d;
    struct dirent *e;
    int fd = dup(s->l_fd);

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (hvsim__listener_name_ok(e->d_name) && stale(s->dir, e->d_name))
            unlinkat(s->l_fd, e->d_name, 0);
    }
    closedir(d);
}

int listeners_open(struct server *s, char *err, size_t errlen)
{
    char path[PATH_MAX + 16];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", s->dir, HVSIM_LISTENER_DIR);
    if (strlen(path) + 1 + HVSIM_LISTENER_NAME_LEN >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        snprintf(err, errlen, "--dir %s: too long for the listeners' socket paths (at most %zu characters)",
                 s->dir, sizeof(((struct sockaddr_un *)0)->sun_path) - 6 - HVSIM_LISTENER_NAME_LEN);
        return -ENAMETOOLONG;
    }
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        return -errno;
    }
    s->l_fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s->l_fd < 0) {
        snprintf(err, errlen, "%s: cannot open as a folder: %s", path, strerror(errno));
        return -errno;
    }
    if (fstat(s->l_fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        snprintf(err, errlen, "%s: must be a folder of this user's with mode 0700 (remove it and start again)",
                 path);
        return -EPERM;
    }
    sweep(s);
    return 0;
}

void listener_file_remove(const struct server *s, const struct bind *b)
{
    if (s->stopping || s->l_fd < 0 || !b->listening || !hvsim__listener_name_ok(b->uname))
        return;
    unlinkat(s->l_fd, b->uname, 0);
}
