// gounix: a guest dialer written on golang.org/x/sys/unix alone (Debian's
// golang-golang-x-sys-dev), no net package and no mdlayher/vsock: the raw
// system calls a hand-written Go agent makes.
//   gounix dial CID PORT   unix.Socket(AF_VSOCK), unix.Connect with a SockaddrVM,
//                          unix.GetsockoptInt (SO_TYPE, SO_DOMAIN, SO_ERROR),
//                          unix.Getpeername; then stdin to the socket and a
//                          half-close, while the socket is copied to stdout to EOF
package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

func num(s string) uint32 {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		panic(err)
	}
	return uint32(v)
}

func fail(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, f+"\n", a...)
	os.Exit(2)
}

func opt(fd, name int) int {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, name)
	if err != nil {
		fail("getsockopt %d: %v", name, err)
	}
	return v
}

// all writes b to fd, whatever the short writes.
func all(fd int, b []byte) {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			fail("write: %v", err)
		}
		b = b[n:]
	}
}

func main() {
	if len(os.Args) != 4 || os.Args[1] != "dial" {
		fail("usage: gounix dial CID PORT")
	}
	fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fail("socket: %v", err)
	}
	sa := &unix.SockaddrVM{CID: num(os.Args[2]), Port: num(os.Args[3])}
	for {
		err = unix.Connect(fd, sa)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		fail("connect: %v", err)
	}
	peer, err := unix.Getpeername(fd)
	if err != nil {
		fail("getpeername: %v", err)
	}
	vm, ok := peer.(*unix.SockaddrVM)
	if !ok {
		fail("getpeername: not a SockaddrVM: %T", peer)
	}
	fmt.Fprintf(os.Stderr, "high %v type %d domain %d error %d peer %d:%d\n", fd >= 768, opt(fd, unix.SO_TYPE),
		opt(fd, unix.SO_DOMAIN), opt(fd, unix.SO_ERROR), vm.CID, vm.Port)
	done := make(chan struct{})
	go func() {
		b := make([]byte, 65536)
		for {
			n, err := os.Stdin.Read(b)
			if n > 0 {
				all(fd, b[:n])
			}
			if err != nil {
				break
			}
		}
		if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
			fail("shutdown: %v", err)
		}
		close(done)
	}()
	b := make([]byte, 65536)
	for {
		n, err := unix.Read(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			fail("read: %v", err)
		}
		if n == 0 {
			break
		}
		if _, err := os.Stdout.Write(b[:n]); err != nil {
			fail("stdout: %v", err)
		}
	}
	<-done
	unix.Close(fd)
}
