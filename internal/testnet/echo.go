package testnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
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

// LockstepEcho posts a body to url through rt in pieces, sending each
// only once the echo of the one before has come back (ServeEcho): it
// passes through a proxy that relays the answer while the body goes, and
// stalls at the first piece behind one that sends the whole body first,
// or holds the answer until the body has gone — whatever the sockets
// between them hold. known sends the body with its length; otherwise it
// goes chunked. It fails the test when the echo is not whole within 15 s.
func LockstepEcho(tb testing.TB, rt http.RoundTripper, url string, known bool) {
	tb.Helper()
	const pieces, size = 64, 16 << 10
	piece := func(i int) []byte {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(i*31 + j*7 + j>>9)
		}
		return b
	}
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest("POST", url, pr)
	if err != nil {
		tb.Fatal(err)
	}
	if known {
		req.ContentLength = pieces * size
	}
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			sent := make(chan error, 1)
			go func() { _, err := pw.Write(piece(0)); sent <- err }()
			resp, err := rt.RoundTrip(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			got := make([]byte, size)
			for i := range pieces {
				if err := <-sent; err != nil {
					return fmt.Errorf("piece %d: %w", i, err)
				}
				if i == pieces-1 {
					// Go's HTTP/2 client holds a known-length body's last
					// bytes until the body ends.
					_ = pw.Close()
				}
				if _, err := io.ReadFull(resp.Body, got); err != nil {
					return fmt.Errorf("the echo of piece %d: %w", i, err)
				}
				if !bytes.Equal(got, piece(i)) {
					return fmt.Errorf("the echo of piece %d differs", i)
				}
				if i < pieces-1 {
					go func() { _, err := pw.Write(piece(i + 1)); sent <- err }()
				}
			}
			if n, _ := io.Copy(io.Discard, resp.Body); n != 0 {
				return fmt.Errorf("%d bytes after the echo", n)
			}
			return nil
		}()
	}()
	select {
	case err := <-done:
		if err != nil {
			tb.Fatalf("lockstep echo (length known %v): %v", known, err)
		}
	case <-time.After(15 * time.Second):
		_ = pw.CloseWithError(errors.New("timed out"))
		tb.Fatalf("lockstep echo (length known %v): no echo of a piece within 15 s: the body is not sent while the answer is relayed", known)
	}
}
