/* SPDX-License-Identifier: MIT */
/*
 * hvsocket.h: the Hyper-V socket constants and address layout, as the Windows
 * SDK's HvSocket.h defines them, for programs built against libhvsim on Linux.
 *
 * Values are copied from the reference (docs/reference/hyperv-sockets.md, sections 1.1-1.5).
 * GUIDs are stored in Windows byte order: Data1, Data2 and Data3 little-endian,
 * Data4 as 8 raw bytes, so a SOCKADDR_HV is byte-for-byte what Winsock sees.
 * On Windows, include <hvsocket.h> from the SDK instead of this file.
 */
#ifndef HVSIM_HVSOCKET_H
#define HVSIM_HVSOCKET_H

#include <stdint.h>
#include <sys/socket.h>

#ifndef AF_HYPERV
#define AF_HYPERV 34 /* ws2def.h, _WIN32_WINNT >= 0x0604; Linux has no AF 34 of its own here */
#endif
#define HV_PROTOCOL_RAW 1

/* Socket options: level HV_PROTOCOL_RAW, value type ULONG (uint32_t here). */
#define HVSOCKET_CONNECT_TIMEOUT 0x01
#define HVSOCKET_CONNECT_TIMEOUT_MAX 300000
#define HVSOCKET_CONTAINER_PASSTHRU 0x02
#define HVSOCKET_CONNECTED_SUSPEND 0x04
#define HVSOCKET_HIGH_VTL 0x08
#define HVSOCKET_ADDRESS_FLAG_PASSTHRU 0x00000001

/*
 * On Linux, level 1 is SOL_SOCKET, and HVSOCKET_CONNECTED_SUSPEND (4) is
 * SO_ERROR's number. On AF_HYPERV sockets libhvsim reads level 1 as
 * HV_PROTOCOL_RAW, as Windows does, so socket-level options of an AF_HYPERV
 * socket use Winsock's own level and numbers. On Windows these are the SDK's
 * SOL_SOCKET, SO_ERROR, ... and a portable program writes them as below.
 */
#define HVSIM_WSA_SOL_SOCKET 0xffff
#define HVSIM_WSA_SO_SNDBUF 0x1001
#define HVSIM_WSA_SO_RCVBUF 0x1002
#define HVSIM_WSA_SO_ERROR 0x1007
#define HVSIM_WSA_SO_TYPE 0x1008

typedef struct hvsim_guid {
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t Data4[8];
} hvsim_guid_t;

#ifndef _WIN32
typedef hvsim_guid_t GUID;
typedef uint32_t ULONG;
#endif

typedef struct _SOCKADDR_HV {
    uint16_t Family; /* AF_HYPERV */
    uint16_t Reserved; /* must be 0 */
    GUID VmId;
    GUID ServiceId;
} SOCKADDR_HV, *PSOCKADDR_HV;

#ifdef __cplusplus
static_assert(sizeof(SOCKADDR_HV) == 36, "SOCKADDR_HV is 36 bytes");
#else
_Static_assert(sizeof(SOCKADDR_HV) == 36, "SOCKADDR_HV is 36 bytes");
#endif

typedef struct _HVSOCKET_ADDRESS_INFO {
    GUID SystemId;
    GUID VirtualMachineId;
    GUID SiloId;
    ULONG Flags;
} HVSOCKET_ADDRESS_INFO, *PHVSOCKET_ADDRESS_INFO;

#define HVSIM_GUID_INIT(d1, d2, d3, b0, b1, b2, b3, b4, b5, b6, b7) \
    { (d1), (d2), (d3), { (b0), (b1), (b2), (b3), (b4), (b5), (b6), (b7) } }

/* 00000000-0000-0000-0000-000000000000 */
static const GUID HV_GUID_ZERO = HVSIM_GUID_INIT(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
#define HV_GUID_WILDCARD HV_GUID_ZERO
/* FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF */
static const GUID HV_GUID_BROADCAST = HVSIM_GUID_INIT(0xFFFFFFFF, 0xFFFF, 0xFFFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF);
/* 90db8b89-0d35-4f79-8ce9-49ea0ac8b7cd */
static const GUID HV_GUID_CHILDREN = HVSIM_GUID_INIT(0x90db8b89, 0x0d35, 0x4f79,
    0x8c, 0xe9, 0x49, 0xea, 0x0a, 0xc8, 0xb7, 0xcd);
/* e0e16197-dd56-4a10-9195-5ee7a155a838 */
static const GUID HV_GUID_LOOPBACK = HVSIM_GUID_INIT(0xe0e16197, 0xdd56, 0x4a10,
    0x91, 0x95, 0x5e, 0xe7, 0xa1, 0x55, 0xa8, 0x38);
/* a42e7cda-d03f-480c-9cc2-a4de20abb878 */
static const GUID HV_GUID_PARENT = HVSIM_GUID_INIT(0xa42e7cda, 0xd03f, 0x480c,
    0x9c, 0xc2, 0xa4, 0xde, 0x20, 0xab, 0xb8, 0x78);
/* 36bd0c5c-7276-4223-88ba-7d03b654c568 */
static const GUID HV_GUID_SILOHOST = HVSIM_GUID_INIT(0x36bd0c5c, 0x7276, 0x4223,
    0x88, 0xba, 0x7d, 0x03, 0xb6, 0x54, 0xc5, 0x68);
/* 00000000-facb-11e6-bd58-64006a7986d3: Data1 is the Linux AF_VSOCK port. */
static const GUID HV_GUID_VSOCK_TEMPLATE = HVSIM_GUID_INIT(0x00000000, 0xfacb, 0x11e6,
    0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3);

#endif /* HVSIM_HVSOCKET_H */
