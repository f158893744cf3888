package h2server

import (
	"bytes"
	"net"
	"net/http"
	"testing"
)

// BenchmarkServe sends GETs with 1 KiB answers over one h2c connection
// from parallel goroutines (net/http's client), to this server and to
// net/http's own HTTP/2 server. Allocations count client and server.
func BenchmarkServe(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1024")
		w.Write(body)
	})
	run := func(b *testing.B, addr string) {
		c := h2cClient(b)
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := drainGet(c, "http://"+addr+"/"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("h2server", func(b *testing.B) {
		_, addr := serve(b, h)
		run(b, addr)
	})
	b.Run("net-http", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		srv := &http.Server{Handler: h, Protocols: &p}
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })
		run(b, ln.Addr().String())
	})
}
