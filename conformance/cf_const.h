/* SPDX-License-Identifier: MIT */
/*
 * cf_const.h: the AF_VSOCK address constants the conformance code names,
 * with Linux's values (linux/vm_sockets.h), spelled here once so that the
 * case files need no Linux header and build unchanged for Windows.
 */
#ifndef HVSIM_CF_CONST_H
#define HVSIM_CF_CONST_H

#define CF_VMADDR_CID_ANY 0xffffffffu /* VMADDR_CID_ANY: bind to any CID; hv_sock's local CID */
#define CF_VMADDR_PORT_ANY 0xffffffffu /* VMADDR_PORT_ANY: bind to a free port */
#define CF_VMADDR_CID_HOST 2u /* VMADDR_CID_HOST: the host, seen from a guest */

#endif /* HVSIM_CF_CONST_H */
