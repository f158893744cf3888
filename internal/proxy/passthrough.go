package proxy

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
)

// passthrough splices a TLS_PASSTHROUGH connection to a target of the
// listener's default rule: the ClientHello bytes already read are written
// first, then bytes flow both ways untouched. Between two *net.TCPConn
// io.Copy uses splice(2) on Linux, so the payload never enters user space.
// Each direction's end is passed on as a half close; the connection is cut
// at MaxConnectionDuration (Lattice's 10-minute cap). The idle timeout is
// not applied to passthrough connections (watching idleness would need a
// user-space copy).
func (ps *portServer) passthrough(client net.Conn, hello []byte, lr *listenerRoute, sni string) {
	e := ps.e
	st := e.states.Get().(*reqState)
	rec := &st.rec
	rec.Start = time.Now()
	rec.ListenerProtocol = model.ProtocolTLSPassthrough
	rec.SNI = sni
	rec.SourceAddr = client.RemoteAddr().String()
	st.fillService(lr)
	defer func() {
		rec.Duration = time.Since(rec.Start)
		e.finish(st)
	}()

	if lr.svc.auth != nil && !ps.authorizeConnect(st, lr.svc, rec.SourceAddr) {
		// Denied: the handshake is cut with access_denied.
		writeAlert(client, alertAccessDenied)
		_ = client.Close()
		return
	}
	g := lr.passthrough.pick()
	var t *target
	if g != nil {
		rec.TargetGroupID, rec.TargetGroupARN = g.tg.id, g.tg.arn
		t = g.tg.pick()
	}
	if t == nil {
		rec.Generated, rec.FailureReason = true, errNoTargets.reason
		_ = client.Close()
		return
	}
	rec.TargetAddr = t.addr
	d := net.Dialer{Timeout: e.cfg.DialTimeout}
	up, err := d.Dial("tcp", t.addr)
	if err != nil {
		rec.Generated = true
		rec.FailureReason = errTargetConnect.reason
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			rec.FailureReason = errTargetTimeout.reason
		}
		e.log.Debug("passthrough target unreachable", "target", t.addr, "err", err)
		_ = client.Close()
		return
	}
	ps.track(client, up)
	defer ps.untrack(client, up)
	deadline := time.Now().Add(e.cfg.MaxConnectionDuration)
	_ = client.SetDeadline(deadline)
	_ = up.SetDeadline(deadline)

	rec.RequestToTarget = time.Since(rec.Start)
	if _, err := up.Write(hello); err != nil {
		rec.FailureReason = errTargetConnect.reason
		_ = up.Close()
		_ = client.Close()
		return
	}
	received := make(chan int64, 1)
	go func() {
		n, err := io.Copy(up, client)
		if err != nil {
			_ = up.Close() // a broken client side ends both
		} else {
			closeWrite(up)
		}
		received <- n
	}()
	sent, err := io.Copy(client, up)
	if err != nil {
		_ = client.Close()
	} else {
		closeWrite(client)
	}
	rec.BytesReceived = int64(len(hello)) + <-received
	rec.BytesSent = sent
	_ = up.Close()
	_ = client.Close()
}

// closeWrite half-closes a TCP connection, or closes another kind.
func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		return
	}
	_ = c.Close()
}
