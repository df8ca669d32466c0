// govsock: a guest dialer or a host/guest listener on github.com/mdlayher/vsock.
//   govsock listen CID PORT   accept one connection (after an accept that must time out),
//                             read to EOF, then send stdin and close
//   govsock dial CID PORT     connect, a read that must time out, send stdin, half-close, read to EOF
//   govsock devcid 0 PORT     ContextID(), the device number of what os.Open("/dev/vsock") gives,
//                             then vsock.Listen (which asks ContextID itself): accept one, send stdin
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/mdlayher/vsock"
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

func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func main() {
	cid, port := num(os.Args[2]), num(os.Args[3])
	switch os.Args[1] {
	case "devcid":
		got, err := vsock.ContextID()
		if err != nil {
			fail("contextid: %v", err)
		}
		f, err := os.Open("/dev/vsock")
		if err != nil {
			fail("open: %v", err)
		}
		st, err := f.Stat()
		if err != nil {
			fail("stat: %v", err)
		}
		f.Close()
		l, err := vsock.Listen(port, nil)
		if err != nil {
			fail("listen: %v", err)
		}
		fmt.Fprintf(os.Stderr, "cid %d rdev %d addr %v\n", got, st.Sys().(*syscall.Stat_t).Rdev, l.Addr())
		c, err := l.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		l.Close()
		if _, err := io.Copy(c, os.Stdin); err != nil {
			fail("write: %v", err)
		}
		c.Close()
	case "listen":
		l, err := vsock.ListenContextID(cid, port, nil)
		if err != nil {
			fail("listen: %v", err)
		}
		l.SetDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := l.Accept(); !timedOut(err) {
			fail("accept deadline: %v", err)
		}
		l.SetDeadline(time.Time{})
		fmt.Fprintf(os.Stderr, "listening %v\n", l.Addr())
		c, err := l.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		l.Close()
		fmt.Fprintf(os.Stderr, "peer %v local %v\n", c.RemoteAddr(), c.LocalAddr())
		if _, err := io.Copy(os.Stdout, c); err != nil {
			fail("read: %v", err)
		}
		if _, err := io.Copy(c, os.Stdin); err != nil {
			fail("write: %v", err)
		}
		c.Close()
	case "dial":
		c, err := vsock.Dial(cid, port, nil)
		if err != nil {
			fail("dial: %v", err)
		}
		fmt.Fprintf(os.Stderr, "peer %v local %v\n", c.RemoteAddr(), c.LocalAddr())
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); !timedOut(err) {
			fail("read deadline: %v", err)
		}
		c.SetReadDeadline(time.Time{})
		if _, err := io.Copy(c, os.Stdin); err != nil {
			fail("write: %v", err)
		}
		if err := c.CloseWrite(); err != nil {
			fail("closewrite: %v", err)
		}
		if _, err := io.Copy(os.Stdout, c); err != nil {
			fail("read: %v", err)
		}
		c.Close()
	}
}
