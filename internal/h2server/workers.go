package h2server

import "sync"

// Handlers run on pooled goroutines. A handler that proxies a request
// needs a deeper stack than a new goroutine starts with, and a new
// goroutine per stream grew it, copying the stack each time, on every
// request (6 % of the gateway's CPU under h2load). A worker that has run
// a handler keeps its grown stack for the next one, until a garbage
// collection finds it idle and shrinks it.

// maxIdleWorkers bounds the workers a Server keeps waiting for a stream.
const maxIdleWorkers = 256

// worker is a goroutine that runs the handlers of streams given to it.
type worker struct {
	next chan job
}

// job is one stream to serve.
type job struct {
	c *conn
	s *stream
}

// workerPool is a Server's idle workers.
type workerPool struct {
	mu     sync.Mutex
	idle   []*worker
	closed bool
}

// run serves s on an idle worker, or on a new one.
func (p *workerPool) run(c *conn, s *stream) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.next <- job{c, s}
		return
	}
	p.mu.Unlock()
	w := &worker{next: make(chan job, 1)}
	go w.loop(p, job{c, s})
}

func (w *worker) loop(p *workerPool, j job) {
	for {
		j.c.runHandler(j.s)
		j = job{}
		if !p.park(w) {
			return
		}
		var ok bool
		if j, ok = <-w.next; !ok {
			return
		}
	}
}

// park makes w idle; false when the pool is full or closed.
func (p *workerPool) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= maxIdleWorkers {
		return false
	}
	p.idle = append(p.idle, w)
	return true
}

// close ends the idle workers and those that finish later.
func (p *workerPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, w := range p.idle {
		close(w.next)
	}
	p.idle = nil
}
