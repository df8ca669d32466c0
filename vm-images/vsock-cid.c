// SPDX-License-Identifier: MIT
// vsock-cid: print this machine's local vsock CID (IOCTL_VM_SOCKETS_GET_LOCAL_CID
// on /dev/vsock). Built static by vm-images/build.sh for the test guest only:
// the guest has CID 1 (loopback only) without a vsock device, and the CID the
// vhost-user backend configures with one. Not for running on the host.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/vm_sockets.h>

int main(void)
{
    unsigned int cid = 0;
    int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "vsock-cid: /dev/vsock: %s\n", strerror(errno));
        return 1;
    }
    if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0) {
        fprintf(stderr, "vsock-cid: IOCTL_VM_SOCKETS_GET_LOCAL_CID: %s\n", strerror(errno));
        return 1;
    }
    printf("%u\n", cid);
    close(fd);
    return 0;
}
