/* SPDX-License-Identifier: MIT */
/*
 * guest-service.c: the guest side of Microsoft's "Make your own integration
 * services" guide (step 3): connect to {HV_GUID_PARENT, service}, send a
 * line, read it back from host-service, and check it. Exits 0 only when the
 * echo matches.
 *
 * The same file builds with Winsock on Windows and with libhvsim on Linux:
 *   Windows:  cl guest-service.c            (links ws2_32.lib and rpcrt4.lib)
 *   hvsim:    make build/bin/guest-service, or by hand:
 *             cc -Isim/include examples/guest-service.c build/lib/libhvsim.a -luuid -pthread
 * With hvsim, run it as a VM's process: HVSIM_PARTITION=<vm name> guest-service
 * Usage: guest-service [SERVICE-GUID]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM "guest-service"

#ifdef _WIN32
#include <winsock2.h>
#include <initguid.h> /* so hvsocket.h defines the HV_GUID_* constants here */
#include <hvsocket.h>
#ifndef AF_HYPERV
#define AF_HYPERV 34 /* the SDK's ws2def.h has it (_WIN32_WINNT >= 0x0604); mingw-w64's does not */
#endif
#include <rpc.h>
#ifdef _MSC_VER
#pragma comment(lib, "ws2_32.lib")
#pragma comment(lib, "rpcrt4.lib")
#endif
static int net_init(void)
{
    WSADATA wsa;

    return WSAStartup(MAKEWORD(2, 2), &wsa);
}
static int parse_guid(const char *text, GUID *out)
{
    return UuidFromStringA((RPC_CSTR)text, out) == RPC_S_OK ? 0 : -1;
}
/* A failed call, as Windows words it: the Winsock code and its message. */
static void report(const char *what)
{
    int err = WSAGetLastError();
    char msg[512] = "";

    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, (DWORD)err, 0, msg,
                   (DWORD)sizeof(msg), NULL);
    msg[strcspn(msg, "\r\n")] = '\0';
    fprintf(stderr, "%s: %s failed: %d: %s\n", PROGRAM, what, err, msg);
}
#define VERSION_TEXT "(Winsock)"
#else
#include <errno.h>
#include <hvsim/hvsim.h>
typedef int SOCKET;
#define INVALID_SOCKET (-1)
#define SOCKET_ERROR (-1)
#define socket hvsim_socket
#define connect hvsim_connect
#define send hvsim_send
#define recv hvsim_recv
#define closesocket hvsim_close
#define WSAGetLastError hvsim_get_last_error
#define WSACleanup() ((void)0)
static int net_init(void)
{
    return 0;
}
static int parse_guid(const char *text, GUID *out)
{
    return hvsim_guid_parse(text, out);
}
/* A failed call, as Windows words it: hvsim keeps the Winsock code and
 * message of every errno (WSAECONNREFUSED 10061: No connection could ...). */
static void report(const char *what)
{
    int err = errno;

    fprintf(stderr, "%s: %s failed: %s %d: %s\n", PROGRAM, what, hvsim_wsa_name(err), hvsim_get_last_error(),
            hvsim_strerror(err));
}
#define STR_(x) #x
#define STR(x) STR_(x)
#define VERSION_TEXT "(hvsim) " STR(HVSIM_VERSION_MAJOR) "." STR(HVSIM_VERSION_MINOR) "." STR(HVSIM_VERSION_PATCH)
#endif

/* The same default as host-service.c. */
#define DEFAULT_SERVICE "0000c0de-facb-11e6-bd58-64006a7986d3"

static const char usage_text[] =
    "usage: " PROGRAM " [SERVICE-GUID]\n"
    "  SERVICE-GUID  the service (default " DEFAULT_SERVICE ")\n"
    "  --version     print the version and exit\n"
    "  -h, --help    print this text and exit\n";

int main(int argc, char **argv)
{
    const char *service = argc > 1 ? argv[1] : DEFAULT_SERVICE;
    const char line[] = "hello from the guest\n";
    int len = (int)strlen(line), got = 0, n = 0;
    char echo[sizeof(line)];
    SOCKADDR_HV addr;
    SOCKET s;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("%s %s\n", PROGRAM, VERSION_TEXT);
        return 0;
    }
    memset(&addr, 0, sizeof(addr));
    addr.Family = AF_HYPERV;
    addr.VmId = HV_GUID_PARENT; /* the host of this VM */
    if (parse_guid(service, &addr.ServiceId) != 0) {
        fprintf(stderr, "guest-service: '%s' is not a GUID\n", service);
        return 2;
    }
    if (net_init() != 0) {
        fprintf(stderr, "guest-service: WSAStartup failed\n");
        return 1;
    }
    s = socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    if (s == INVALID_SOCKET) {
        report("socket");
        return 1;
    }
    if (connect(s, (struct sockaddr *)&addr, sizeof(addr)) == SOCKET_ERROR) {
        report("connect to the host's service");
        return 1;
    }
    if (send(s, line, len, 0) != len) {
        report("send");
        return 1;
    }
    /* A stream may deliver the echo in pieces: read until all of it is here. */
    while (got < len && (n = (int)recv(s, echo + got, len - got, 0)) > 0)
        got += n;
    if (n == SOCKET_ERROR) {
        report("recv");
        return 1;
    }
    closesocket(s);
    WSACleanup();
    echo[got] = '\0';
    if (got != len || memcmp(echo, line, (size_t)len) != 0) {
        fprintf(stderr, "guest-service: the echo differs: sent %d bytes, got %d back: '%s'\n", len, got, echo);
        return 1;
    }
    printf("guest-service: echo: %s", echo);
    return 0;
}
