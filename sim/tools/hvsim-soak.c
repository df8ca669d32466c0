/* SPDX-License-Identifier: MIT */
/*
 * hvsim-soak: the stream worker of `make soak` (ci/soak.py drives it).
 *
 *   hvsim-soak serve PORT            a host service on {wildcard, PORT}: echoes every
 *                                    connection, a thread each, until killed
 *   hvsim-soak drive PORT K SECONDS  K streams as a guest (HVSIM_PARTITION) to the host's
 *                                    PORT for SECONDS; a stream that ends is replaced
 *
 * A stream sends frames {magic, stream, seq, len, crc32 of the payload} with
 * a payload of random size made from the stream's own generator, and checks
 * the echo frame by frame: a bad magic or CRC is corruption, a sequence out of
 * order is reordering. Every stream ends in one JSON line on stdout:
 * {"stream", "start_ms", "end_ms", "frames", "bytes", "corrupted", "reordered",
 * "end"}, where "end" is "ok" (its time was up) or the errno name that cut it.
 * Times are CLOCK_MONOTONIC milliseconds, comparable with the driver's.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hvsim/hvsim.h"

#define MAGIC 0x736f616bu /* "soak" */
#define MAX_PAYLOAD 65536

struct frame {
    uint32_t magic, stream, seq, len, crc;
};

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    size_t i;
    int k;

    for (i = 0; i < n; i++) {
        c ^= p[i];
        for (k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int io_all(int fd, void *buf, size_t n, int out)
{
    size_t done = 0;

    while (done < n) {
        ssize_t r = out ? hvsim_send(fd, (char *)buf + done, n - done, MSG_NOSIGNAL)
                        : hvsim_recv(fd, (char *)buf + done, n - done, 0);

        if (r > 0)
            done += (size_t)r;
        else if (r == 0)
            return -EPIPE; /* the peer ended the stream */
        else if (errno != EINTR)
            return -errno;
    }
    return 0;
}

/* ---- serve ------------------------------------------------------------------------------ */

static void *echo_main(void *arg)
{
    int c = (int)(intptr_t)arg;
    static __thread uint8_t buf[16384];

    for (;;) {
        ssize_t n = hvsim_recv(c, buf, sizeof(buf), 0);

        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
        if (n > 0 && io_all(c, buf, (size_t)n, 1) < 0)
            break;
    }
    hvsim_close(c);
    return NULL;
}

static int serve(uint32_t port)
{
    GUID svc = hvsim_guid_from_port(port);
    SOCKADDR_HV a = { .Family = AF_HYPERV, .VmId = HV_GUID_WILDCARD, .ServiceId = svc };
    int l = hvsim_socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);

    if (l < 0 || hvsim_bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || hvsim_listen(l, 128) < 0) {
        fprintf(stderr, "hvsim-soak serve: listen on port %u: %s\n", port, hvsim_strerror(errno));
        return 1;
    }
    printf("listening\n");
    fflush(stdout);
    for (;;) {
        pthread_t t;
        int c = hvsim_accept(l, NULL, NULL);

        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            fprintf(stderr, "hvsim-soak serve: accept: %s\n", hvsim_strerror(errno));
            return 1;
        }
        if (pthread_create(&t, NULL, echo_main, (void *)(intptr_t)c) == 0)
            pthread_detach(t);
        else
            hvsim_close(c);
    }
}

/* ---- drive ------------------------------------------------------------------------------ */

struct stream_result {
    uint32_t id;
    uint64_t start, end, frames, bytes, corrupted, reordered;
    int err; /* 0: its time was up */
};

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void report(const struct stream_result *r)
{
    pthread_mutex_lock(&out_lock);
    printf("{\"stream\": %u, \"start_ms\": %llu, \"end_ms\": %llu, \"frames\": %llu, \"bytes\": %llu, "
           "\"corrupted\": %llu, \"reordered\": %llu, \"end\": \"%s\"}\n",
           r->id, (unsigned long long)r->start, (unsigned long long)r->end, (unsigned long long)r->frames,
           (unsigned long long)r->bytes, (unsigned long long)r->corrupted, (unsigned long long)r->reordered,
           r->err ? hvsim_err_name(r->err) : "ok");
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

/* One frame out and its echo back, checked. 0, or -errno of the stream. */
static int one_frame(int s, struct stream_result *r, uint64_t *seed, uint8_t *out, uint8_t *in)
{
    uint32_t len = (uint32_t)(rnd(seed) % MAX_PAYLOAD) + 1, i;
    struct frame f = { MAGIC, r->id, (uint32_t)r->frames, len, 0 }, g;
    int rc;

    for (i = 0; i < len; i++)
        out[i] = (uint8_t)rnd(seed);
    f.crc = crc32(out, len);
    if ((rc = io_all(s, &f, sizeof(f), 1)) < 0 || (rc = io_all(s, out, len, 1)) < 0 ||
        (rc = io_all(s, &g, sizeof(g), 0)) < 0)
        return rc;
    if (g.magic != MAGIC || g.len != len || g.stream != f.stream) {
        r->corrupted++;
        return -EPROTO; /* the framing is lost: end the stream */
    }
    if ((rc = io_all(s, in, len, 0)) < 0)
        return rc;
    if (g.seq != f.seq)
        r->reordered++;
    if (crc32(in, len) != g.crc || memcmp(in, out, len) != 0)
        r->corrupted++;
    r->frames++;
    r->bytes += 2u * len;
    return 0;
}

struct driver {
    uint32_t port, next_id;
    uint64_t until;
    pthread_mutex_t lock;
};

static int dial(uint32_t port)
{
    struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port };
    int s = hvsim_socket(AF_VSOCK, SOCK_STREAM, 0);

    if (s < 0)
        return -errno;
    if (hvsim_connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
        int e = errno;

        hvsim_close(s);
        return -e;
    }
    return s;
}

static void *stream_main(void *arg)
{
    struct driver *d = arg;
    uint8_t *out = malloc(MAX_PAYLOAD), *in = malloc(MAX_PAYLOAD);

    while (out && in && now_ms() < d->until) {
        struct stream_result r = { 0 };
        uint64_t seed;
        int s, rc = 0;

        pthread_mutex_lock(&d->lock);
        r.id = d->next_id++;
        pthread_mutex_unlock(&d->lock);
        seed = 0x9e3779b97f4a7c15ull * (r.id + 1);
        r.start = now_ms();
        s = dial(d->port);
        if (s < 0) {
            /* Not a stream: the service may be away (a fault); try again soon. */
            usleep(50 * 1000);
            continue;
        }
        while (rc == 0 && now_ms() < d->until)
            rc = one_frame(s, &r, &seed, out, in);
        r.end = now_ms();
        r.err = rc < 0 ? -rc : 0;
        hvsim_close(s);
        report(&r);
    }
    free(out);
    free(in);
    return NULL;
}

static int drive(uint32_t port, int k, double seconds)
{
    struct driver d = { .port = port, .until = now_ms() + (uint64_t)(seconds * 1000.0),
                        .lock = PTHREAD_MUTEX_INITIALIZER };
    pthread_t t[256];
    int i;

    if (k < 1 || k > 256) {
        fprintf(stderr, "hvsim-soak drive: K: expected 1..256 streams, got %d\n", k);
        return 2;
    }
    for (i = 0; i < k; i++)
        if (pthread_create(&t[i], NULL, stream_main, &d) != 0)
            return 1;
    for (i = 0; i < k; i++)
        pthread_join(t[i], NULL);
    return 0;
}

static int number(const char *what, const char *text, long lo, long hi, long *out)
{
    char *end;

    errno = 0;
    *out = strtol(text, &end, 10);
    if (errno || *end || *out < lo || *out > hi) {
        fprintf(stderr, "hvsim-soak: %s: expected %ld..%ld, got '%s'\n", what, lo, hi, text);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    long port, k, secs;

    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "serve") == 0)
        return number("PORT", argv[2], 1, 0x7fffffff, &port) < 0 ? 2 : serve((uint32_t)port);
    if (argc == 5 && strcmp(argv[1], "drive") == 0) {
        if (number("PORT", argv[2], 1, 0x7fffffff, &port) < 0 || number("K", argv[3], 1, 256, &k) < 0 ||
            number("SECONDS", argv[4], 1, 86400, &secs) < 0)
            return 2;
        return drive((uint32_t)port, (int)k, (double)secs);
    }
    fprintf(stderr, "usage: hvsim-soak serve PORT | hvsim-soak drive PORT K SECONDS\n");
    return 2;
}
