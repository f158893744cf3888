// Package dns answers DNS queries for the names of the services a node
// serves: A and AAAA records from a table the gateway replaces whenever a
// snapshot changes what it serves.
//
// Lifecycle: New, Listen (binds UDP and TCP on one port), Serve until its
// context ends; SetRecords at any time, from any goroutine. Queries read
// the current table with one atomic load, so a swap never blocks them and
// a query sees either the old table or the new one, never a mix.
//
// Answers, for a query of class IN (or ANY):
//
//   - a name in the table: NOERROR, authoritative, its A and/or AAAA
//     records (ANY gives both); a type it has no records of gives an empty
//     answer (NODATA), without an SOA record, so resolvers do not cache
//     the absence for long;
//   - a name inside a zone the server owns — "vpc-lattice-svcs.<region>.on.aws"
//     of Lattice's generated names <name>-<id>.<partition>.vpc-lattice-svcs.<region>.on.aws
//     present in the table — but not in the table: NXDOMAIN, authoritative
//     (its parents, such as <partition>.vpc-lattice-svcs.<region>.on.aws,
//     are NODATA);
//   - any other name: REFUSED. The server is not authoritative for
//     anything else and does not recurse; in particular the zones of
//     custom domain names (example.com for api.example.com) hold names
//     Trellis does not know, so it must not deny that they exist.
//
// Queries with an OPT record get one back (EDNS0, payload 1232, version 0;
// other versions get BADVERS). Over UDP, a response larger than 512 bytes
// (or the client's EDNS0 payload size, capped at 1232) is sent empty with
// the TC bit, and the client retries over TCP, where messages carry the
// two-byte length prefix of RFC 1035 and a connection may carry several
// queries. Packets that are not queries, or too short to answer, are
// dropped; other malformed queries get FORMERR.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Server.
type Config struct {
	// Addr is the host:port to bind, e.g. 127.0.0.1:7053. Port 0 picks a
	// port free for both UDP and TCP.
	Addr string
	// Logger receives socket errors. Default: discard.
	Logger *slog.Logger
	// TTL of answers, in seconds. Default 10: short, so a client follows a
	// service's address change quickly, at the cost of more queries.
	TTL uint32
	// TCPIdleTimeout closes a TCP connection that sends no query for this
	// long. Default 10 s.
	TCPIdleTimeout time.Duration
	// MaxTCPConns bounds concurrent TCP connections; more are closed at
	// once. Default 256.
	MaxTCPConns int
}

// Server is a DNS responder. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	ttl     uint32
	records atomic.Pointer[table]

	mu    sync.Mutex
	udp   *net.UDPConn
	tcp   net.Listener
	conns map[net.Conn]struct{}
}

// New returns a server with an empty table; it answers REFUSED to every
// query until SetRecords.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TTL == 0 {
		cfg.TTL = 10
	}
	if cfg.TCPIdleTimeout <= 0 {
		cfg.TCPIdleTimeout = 10 * time.Second
	}
	if cfg.MaxTCPConns <= 0 {
		cfg.MaxTCPConns = 256
	}
	s := &Server{cfg: cfg, log: cfg.Logger, ttl: cfg.TTL, conns: map[net.Conn]struct{}{}}
	s.records.Store(newTable(nil, nil))
	return s
}

// SetRecords replaces the table. Keys of names are FQDNs (case and a
// trailing dot do not matter) answered with Config.TTL; IPv4 (and
// IPv4-mapped) addresses answer A, IPv6 AAAA. A name with no addresses
// exists (NODATA). zones are further zones the server is authoritative
// for, whose names carry their own TTL. Nothing passed is kept.
func (s *Server) SetRecords(names map[string][]netip.Addr, zones ...Zone) {
	s.records.Store(newTable(names, zones))
}

// Listen binds UDP and TCP on Config.Addr. With port 0 it binds TCP on a
// free port and UDP on the same port, retrying when that UDP port is taken.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcp != nil {
		return errors.New("dns: already listening")
	}
	host, port, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("dns: address %q: %w", s.cfg.Addr, err)
	}
	attempts := 1
	if port == "0" {
		attempts = 20
	}
	var lastErr error
	for range attempts {
		tcp, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("dns: listen tcp %s: %w", s.cfg.Addr, err)
		}
		p := tcp.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			_ = tcp.Close()
			lastErr = err
			continue
		}
		s.tcp, s.udp = tcp, pc.(*net.UDPConn)
		return nil
	}
	return fmt.Errorf("dns: listen udp %s: %w", s.cfg.Addr, lastErr)
}

// Addr is the bound address (host:port, the same for UDP and TCP), or
// Config.Addr before Listen.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tcp == nil {
		return s.cfg.Addr
	}
	return s.tcp.Addr().String()
}

// Serve answers queries until ctx ends, then closes the sockets and every
// TCP connection and returns nil once all its goroutines have exited. It
// calls Listen first if needed. It returns an error when a socket fails.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	listening := s.tcp != nil
	s.mu.Unlock()
	if !listening {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	udp, tcp := s.udp, s.tcp
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	fail := func(err error) {
		if ctx.Err() != nil {
			return // closed by shutdown
		}
		select {
		case errc <- err:
		default:
		}
		cancel()
	}
	readers := max(2, runtime.GOMAXPROCS(0))
	for range readers {
		wg.Go(func() {
			if err := s.serveUDP(udp); err != nil {
				fail(fmt.Errorf("dns: udp: %w", err))
			}
		})
	}
	wg.Go(func() {
		if err := s.serveTCP(ctx, tcp, &wg); err != nil {
			fail(fmt.Errorf("dns: tcp: %w", err))
		}
	})

	<-ctx.Done()
	_ = udp.Close()
	_ = tcp.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// serveUDP is one reader of the UDP socket; each reader has its own
// buffers, and addresses travel as netip.AddrPort, so a query costs no
// allocation.
func (s *Server) serveUDP(conn *net.UDPConn) error {
	in := make([]byte, maxMsgSize)
	// Room for a response over the client's limit, which is then built
	// again smaller, without growing the buffer.
	out := make([]byte, 0, maxMsgSize)
	for {
		n, addr, err := conn.ReadFromUDPAddrPort(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if isTemporary(err) {
				continue
			}
			return err
		}
		resp := s.handle(in[:n], out[:0], true)
		if resp == nil {
			continue
		}
		if _, err := conn.WriteToUDPAddrPort(resp, addr); err != nil && errors.Is(err, net.ErrClosed) {
			return nil
		}
	}
}

func (s *Server) serveTCP(ctx context.Context, l net.Listener, wg *sync.WaitGroup) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			if isTemporary(err) {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.mu.Lock()
		if ctx.Err() != nil || len(s.conns) >= s.cfg.MaxTCPConns {
			s.mu.Unlock()
			_ = c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.serveConn(c)
		})
	}
}

// serveConn answers the length-prefixed queries of one TCP connection, in
// order, until the client closes it, stays idle too long, or sends a
// message the server drops.
// tcpOutBuf is a TCP connection's response buffer: an SRV answer of eight
// targets with their addresses fits; larger answers allocate.
const tcpOutBuf = 4096

func (s *Server) serveConn(c net.Conn) {
	in := make([]byte, maxMsgSize)
	out := make([]byte, 2, 2+tcpOutBuf)
	for {
		if err := c.SetReadDeadline(time.Now().Add(s.cfg.TCPIdleTimeout)); err != nil {
			return
		}
		if _, err := readFull(c, in[:2]); err != nil {
			return
		}
		n := int(in[0])<<8 | int(in[1])
		if _, err := readFull(c, in[:n]); err != nil {
			return
		}
		resp := s.handle(in[:n], out[2:2], false)
		if resp == nil {
			return
		}
		var frame []byte
		if len(resp) <= cap(out)-2 {
			frame = out[:2+len(resp)] // resp was built in place after the prefix
		} else {
			frame = append([]byte{0, 0}, resp...)
		}
		frame[0], frame[1] = byte(len(resp)>>8), byte(len(resp))
		if err := c.SetWriteDeadline(time.Now().Add(s.cfg.TCPIdleTimeout)); err != nil {
			return
		}
		if _, err := c.Write(frame); err != nil {
			return
		}
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func isTemporary(err error) bool {
	var ne interface{ Temporary() bool }
	return errors.As(err, &ne) && ne.Temporary()
}
