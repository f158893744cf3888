package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/trellis-mesh/trellis/internal/metrics"
)

// adminPort is the admin listener's port when the document sets no
// trellis.adminAddr: Envoy's (and ECS's proxy's) admin port.
const adminPort = "9901"

// adminAddr is where the admin listener binds: Options.AdminAddr, else
// the document's trellis.adminAddr, else the instance address on port
// 9901 (so that agents of one machine, each with its own address, do not
// collide).
func (a *Agent) adminAddr() string {
	switch {
	case a.opts.AdminAddr != "":
		return a.opts.AdminAddr
	case a.cfg.Source != nil && a.cfg.Source.Trellis != nil && a.cfg.Source.Trellis.AdminAddr != nil:
		return a.cfg.AdminAddr
	}
	return net.JoinHostPort(a.opts.Address.String(), adminPort)
}

// startAdmin serves /metrics (ECS Service Connect's metrics), /ready (200
// once egress is set up and the task's instances are registered) and
// /healthz. "-" as the address turns it off.
func (a *Agent) startAdmin(reg *metrics.Registry) error {
	addr := a.adminAddr()
	if addr == "-" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("agent: admin listener (--admin-addr, trellis.adminAddr): %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-a.ready:
			_, _ = w.Write([]byte("ready\n"))
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	})
	a.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := a.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Warn("admin listener stopped", "err", err)
		}
	}()
	a.log.Info("admin", "listen", ln.Addr().String(), "paths", "/metrics /ready /healthz")
	a.adminListen = ln.Addr().String()
	return nil
}

// AdminAddr is the admin listener's address, "" when there is none.
func (a *Agent) AdminAddr() string { return a.adminListen }

func (a *Agent) stopAdmin(ctx context.Context) {
	if a.admin != nil {
		_ = a.admin.Shutdown(ctx)
	}
}
