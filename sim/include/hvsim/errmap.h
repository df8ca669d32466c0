/* SPDX-License-Identifier: MIT */
/*
 * errmap.h: the one errno <-> Winsock table of hvsim, as an X-macro.
 *
 * Each row: the errno's name, its value, the Winsock code a Windows program
 * sees for it (0: none), that code's name, and the Winsock message (ours where
 * Winsock has no code). libhvsim builds hvsim_strerror() and friends from it;
 * the conformance agent, built for Linux and for Windows, maps both ways with
 * it. It needs nothing but the errno constants, so it compiles with MinGW
 * too (where a constant is missing, the includer defines it first).
 *
 * Order matters where values or codes repeat: a lookup takes the first row.
 * EAGAIN/EWOULDBLOCK and EOPNOTSUPP/ENOTSUP are one value on Linux;
 * WSAESHUTDOWN is ESHUTDOWN's (EPIPE borrows it) and WSAENOBUFS is ENOBUFS's
 * (ENOMEM borrows it), so a Winsock code maps back to the first row.
 */
#ifndef HVSIM_ERRMAP_H
#define HVSIM_ERRMAP_H

/* XX(name, errno, Winsock code, Winsock name, message) */
#define HVSIM_ERRNO_MAP(XX)                                                                                     \
    XX(EINTR, EINTR, 10004, WSAEINTR, "A blocking operation was interrupted by a call to WSACancelBlockingCall.") \
    XX(EBADF, EBADF, 10009, WSAEBADF, "The file handle supplied is not valid.")                                 \
    XX(EACCES, EACCES, 10013, WSAEACCES,                                                                        \
       "An attempt was made to access a socket in a way forbidden by its access permissions.")                  \
    XX(EFAULT, EFAULT, 10014, WSAEFAULT,                                                                        \
       "The system detected an invalid pointer address in attempting to use a pointer argument in a call.")     \
    XX(EINVAL, EINVAL, 10022, WSAEINVAL, "An invalid argument was supplied.")                                   \
    XX(EMFILE, EMFILE, 10024, WSAEMFILE, "Too many open sockets.")                                              \
    XX(EAGAIN, EAGAIN, 10035, WSAEWOULDBLOCK, "A non-blocking socket operation could not be completed immediately.") \
    XX(EWOULDBLOCK, EWOULDBLOCK, 10035, WSAEWOULDBLOCK,                                                         \
       "A non-blocking socket operation could not be completed immediately.")                                   \
    XX(EINPROGRESS, EINPROGRESS, 10036, WSAEINPROGRESS, "A blocking operation is currently executing.")        \
    XX(EALREADY, EALREADY, 10037, WSAEALREADY,                                                                  \
       "An operation was attempted on a non-blocking socket that already had an operation in progress.")        \
    XX(ENOTSOCK, ENOTSOCK, 10038, WSAENOTSOCK, "An operation was attempted on something that is not a socket.") \
    XX(EDESTADDRREQ, EDESTADDRREQ, 10039, WSAEDESTADDRREQ, "A required address was omitted from an operation on a socket.") \
    XX(EMSGSIZE, EMSGSIZE, 10040, WSAEMSGSIZE,                                                                  \
       "A message sent on a datagram socket was larger than the internal message buffer or some other network " \
       "limit.")                                                                                                \
    XX(EPROTOTYPE, EPROTOTYPE, 10041, WSAEPROTOTYPE,                                                            \
       "A protocol was specified in the socket function call that does not support the semantics of the socket " \
       "type requested.")                                                                                       \
    XX(ENOPROTOOPT, ENOPROTOOPT, 10042, WSAENOPROTOOPT,                                                         \
       "An unknown, invalid, or unsupported option or level was specified in a getsockopt or setsockopt call.") \
    XX(EPROTONOSUPPORT, EPROTONOSUPPORT, 10043, WSAEPROTONOSUPPORT,                                             \
       "The requested protocol has not been configured into the system, or no implementation for it exists.")  \
    XX(ESOCKTNOSUPPORT, ESOCKTNOSUPPORT, 10044, WSAESOCKTNOSUPPORT,                                             \
       "The support for the specified socket type does not exist in this address family.")                     \
    XX(EOPNOTSUPP, EOPNOTSUPP, 10045, WSAEOPNOTSUPP,                                                            \
       "The attempted operation is not supported for the type of object referenced.")                          \
    XX(ENOTSUP, ENOTSUP, 10045, WSAEOPNOTSUPP, "The attempted operation is not supported for the type of object referenced.") \
    XX(EPFNOSUPPORT, EPFNOSUPPORT, 10046, WSAEPFNOSUPPORT,                                                      \
       "The protocol family has not been configured into the system or no implementation for it exists.")      \
    XX(EAFNOSUPPORT, EAFNOSUPPORT, 10047, WSAEAFNOSUPPORT, "An address incompatible with the requested protocol was used.") \
    XX(EADDRINUSE, EADDRINUSE, 10048, WSAEADDRINUSE,                                                            \
       "Only one usage of each socket address (protocol/network address/port) is normally permitted.")          \
    XX(EADDRNOTAVAIL, EADDRNOTAVAIL, 10049, WSAEADDRNOTAVAIL, "The requested address is not valid in its context.") \
    XX(ENETDOWN, ENETDOWN, 10050, WSAENETDOWN, "A socket operation encountered a dead network.")               \
    XX(ENETUNREACH, ENETUNREACH, 10051, WSAENETUNREACH, "A socket operation was attempted to an unreachable network.") \
    XX(ENETRESET, ENETRESET, 10052, WSAENETRESET,                                                               \
       "The connection has been broken due to keep-alive activity detecting a failure while the operation was " \
       "in progress.")                                                                                          \
    XX(ECONNABORTED, ECONNABORTED, 10053, WSAECONNABORTED,                                                      \
       "An established connection was aborted by the software in your host machine.")                          \
    XX(ECONNRESET, ECONNRESET, 10054, WSAECONNRESET, "An existing connection was forcibly closed by the remote host.") \
    XX(ENOBUFS, ENOBUFS, 10055, WSAENOBUFS,                                                                     \
       "An operation on a socket could not be performed because the system lacked sufficient buffer space or "  \
       "because a queue was full.")                                                                             \
    XX(EISCONN, EISCONN, 10056, WSAEISCONN, "A connect request was made on an already connected socket.")      \
    XX(ENOTCONN, ENOTCONN, 10057, WSAENOTCONN,                                                                  \
       "A request to send or receive data was disallowed because the socket is not connected and (when sending " \
       "on a datagram socket using a sendto call) no address was supplied.")                                   \
    XX(ESHUTDOWN, ESHUTDOWN, 10058, WSAESHUTDOWN,                                                               \
       "A request to send or receive data was disallowed because the socket had already been shut down in that " \
       "direction with a previous shutdown call.")                                                              \
    XX(EPIPE, EPIPE, 10058, WSAESHUTDOWN, "Broken pipe: the socket was shut down for sending.")                 \
    XX(ETOOMANYREFS, ETOOMANYREFS, 10059, WSAETOOMANYREFS, "Too many references to some kernel object.")        \
    XX(ETIMEDOUT, ETIMEDOUT, 10060, WSAETIMEDOUT,                                                               \
       "A connection attempt failed because the connected party did not properly respond after a period of "    \
       "time, or established connection failed because connected host has failed to respond.")                 \
    XX(ECONNREFUSED, ECONNREFUSED, 10061, WSAECONNREFUSED,                                                      \
       "No connection could be made because the target machine actively refused it.")                          \
    XX(EHOSTDOWN, EHOSTDOWN, 10064, WSAEHOSTDOWN, "A socket operation failed because the destination host was down.") \
    XX(EHOSTUNREACH, EHOSTUNREACH, 10065, WSAEHOSTUNREACH, "A socket operation was attempted to an unreachable host.") \
    XX(ECANCELED, ECANCELED, 10103, WSAECANCELLED, "The operation was canceled.")                              \
    XX(ENOMEM, ENOMEM, 10055, WSAENOBUFS, "Out of memory.")                                                     \
    XX(ENOENT, ENOENT, 0, , "No such object (VM, service or file).")                                            \
    XX(ENODEV, ENODEV, 0, , "No such device: the transport does not offer this socket type.")                   \
    XX(EEXIST, EEXIST, 0, , "The object already exists.")                                                       \
    XX(EPROTO, EPROTO, 0, , "The emulated host sent a message this library does not understand.")              \
    XX(EPERM, EPERM, 0, , "Operation not permitted.")                                                           \
    XX(EIO, EIO, 0, , "Input/output error.")                                                                    \
    XX(EDOM, EDOM, 0, , "Numerical argument out of domain.")                                                    \
    XX(ERANGE, ERANGE, 0, , "Numerical result out of range.")                                                   \
    XX(ENAMETOOLONG, ENAMETOOLONG, 0, , "File name too long.")

#endif /* HVSIM_ERRMAP_H */
