package testnet

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
)

// ServeEcho is an HTTP/1.1 target that answers every request at once
// with a chunked 200 and then echoes the body back as it reads it, chunk
// by chunk: a target that streams its answer while it reads (HTTP/1.1
// allows it; an echo or transcoding service does it), for the full-duplex
// tests of the proxies. ended, if not nil, gets the end of each
// connection.
func ServeEcho(tb testing.TB, ended chan<- struct{}) string {
	addr, _ := Serve(tb, func(c net.Conn, br *bufio.Reader) {
		if ended != nil {
			defer func() { ended <- struct{}{} }()
		}
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			bw := bufio.NewWriterSize(c, 64<<10)
			_, _ = bw.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			if bw.Flush() != nil {
				return
			}
			buf := make([]byte, 32<<10)
			for {
				n, err := req.Body.Read(buf)
				if n > 0 {
					fmt.Fprintf(bw, "%x\r\n", n)
					_, _ = bw.Write(buf[:n])
					_, _ = bw.WriteString("\r\n")
					if bw.Flush() != nil {
						return
					}
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					return
				}
			}
			_, _ = bw.WriteString("0\r\n\r\n")
			if bw.Flush() != nil {
				return
			}
		}
	})
	return addr
}

// DuplexBody is larger than what the sockets between a client, a proxy
// and a target can hold: a proxy that sends all of it before it reads
// the answer waits for a target (ServeEcho) that waits for it.
func DuplexBody() []byte {
	b := make([]byte, 24<<20)
	for i := range b {
		b[i] = byte(i*7 + i>>13)
	}
	return b
}
