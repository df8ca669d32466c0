/* SPDX-License-Identifier: MIT */
/*
 * host-service.c: the host side of Microsoft's "Make your own integration
 * services" guide (step 2): listen on {HV_GUID_WILDCARD, service}, accept one
 * VM's connection and echo back everything it sends until it closes.
 *
 * The same file builds with Winsock on Windows and with libhvsim on Linux:
 *   Windows:  cl host-service.c            (links ws2_32.lib and rpcrt4.lib)
 *   hvsim:    make build/bin/host-service, or by hand:
 *             cc -Isim/include examples/host-service.c build/lib/libhvsim.a -luuid -pthread
 *
 * A classic VM may only reach a service the host has registered, so register
 * it first (the GUID below is the default):
 *   Windows (PowerShell as administrator):
 *     $p = "HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Virtualization\GuestCommunicationServices"
 *     $k = New-Item -Path $p -Name 0000c0de-facb-11e6-bd58-64006a7986d3
 *     $k.SetValue("ElementName", "hvsim echo example")
 *   hvsim:
 *     hvsimctl service add 0000c0de-facb-11e6-bd58-64006a7986d3 "hvsim echo example"
 * Usage: host-service [SERVICE-GUID]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRAM "host-service"

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
#define bind hvsim_bind
#define listen hvsim_listen
#define accept hvsim_accept
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

/* A VSOCK template GUID (port 0xc0de), so a Linux guest can reach the
 * service too, as AF_VSOCK port 49374. */
#define DEFAULT_SERVICE "0000c0de-facb-11e6-bd58-64006a7986d3"

static const char usage_text[] =
    "usage: " PROGRAM " [SERVICE-GUID]\n"
    "  SERVICE-GUID  the service (default " DEFAULT_SERVICE ")\n"
    "  --version     print the version and exit\n"
    "  -h, --help    print this text and exit\n";

int main(int argc, char **argv)
{
    const char *service = argc > 1 ? argv[1] : DEFAULT_SERVICE;
    SOCKADDR_HV addr;
    SOCKET listener, client;
    char buf[4096];
    int n;

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
    addr.VmId = HV_GUID_WILDCARD; /* accept connections from any partition */
    if (parse_guid(service, &addr.ServiceId) != 0) {
        fprintf(stderr, "host-service: '%s' is not a GUID\n", service);
        return 2;
    }
    if (net_init() != 0) {
        fprintf(stderr, "host-service: WSAStartup failed\n");
        return 1;
    }
    listener = socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW);
    if (listener == INVALID_SOCKET) {
        report("socket");
        return 1;
    }
    if (bind(listener, (struct sockaddr *)&addr, sizeof(addr)) == SOCKET_ERROR ||
        listen(listener, SOMAXCONN) == SOCKET_ERROR) {
        report("bind/listen on the service");
        return 1;
    }
    printf("host-service: listening on service %s\n", service);
    fflush(stdout);

    client = accept(listener, NULL, NULL);
    if (client == INVALID_SOCKET) {
        report("accept");
        return 1;
    }
    closesocket(listener);
    /* recv returns 0 when the guest has sent everything and closed. */
    while ((n = (int)recv(client, buf, (int)sizeof(buf), 0)) > 0) {
        if (send(client, buf, n, 0) != n) {
            report("send");
            return 1;
        }
    }
    if (n == SOCKET_ERROR) {
        report("recv");
        return 1;
    }
    printf("host-service: the guest closed the connection\n");
    closesocket(client);
    WSACleanup();
    return 0;
}
