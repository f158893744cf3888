package h2server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// goid is the calling goroutine's id, read from its stack header.
func goid() int {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.Atoi(string(b[:bytes.IndexByte(b, ' ')]))
	return id
}

// TestWorkersReused: handlers of streams that follow one another run on
// the same few goroutines, which keep their grown stacks, rather than on
// one new goroutine per stream.
func TestWorkersReused(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	_, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[goid()]++
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	c := h2cClient(t)
	const n = 50
	for i := 0; i < n; i++ {
		if err := drainGet(c, "http://"+addr+"/"); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// One request at a time: a handler's worker is idle again by the time
	// the next stream starts, give or take the race with its last write.
	if len(seen) > n/5 {
		t.Fatalf("%d requests in a row ran on %d goroutines", n, len(seen))
	}
}

// TestWorkersBoundedAndShutdown: no more than maxIdleWorkers wait after
// a burst wider than that, and Shutdown ends those that wait.
func TestWorkersBoundedAndShutdown(t *testing.T) {
	const burst = maxIdleWorkers + 64
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(burst)
	s, addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Done()
		<-release
		io.WriteString(w, "ok")
	}), func(s *Server) { s.MaxConcurrentStreams = burst })
	c := h2cClient(t)
	var done sync.WaitGroup
	for i := 0; i < burst; i++ {
		done.Add(1)
		go func() {
			defer done.Done()
			if err := drainGet(c, "http://"+addr+"/"); err != nil {
				t.Error(err)
			}
		}()
	}
	started.Wait()
	close(release)
	done.Wait()
	// The last handlers park after their responses went out.
	idle := func() int {
		s.workers.mu.Lock()
		defer s.workers.mu.Unlock()
		return len(s.workers.idle)
	}
	for i := 0; i < 500 && idle() < maxIdleWorkers; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := idle(); n != maxIdleWorkers {
		t.Fatalf("%d idle workers after a burst of %d, want the bound %d", n, burst, maxIdleWorkers)
	}

	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := idle(); n != 0 {
		t.Fatalf("%d idle workers after Shutdown", n)
	}
	for i := 0; i < 500 && runtime.NumGoroutine() > before-maxIdleWorkers; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before-maxIdleWorkers {
		t.Fatalf("goroutines: %d before Shutdown, %d after; the %d idle workers did not end", before, after, maxIdleWorkers)
	}
}
