package accesslog

import (
	"github.com/trellis-mesh/trellis/internal/identity"

	"strconv"
	"time"
	"unicode/utf8"

	"github.com/trellis-mesh/trellis/internal/proxy"
)

// timeFormat is Lattice's startTime: ISO 8601, UTC, whole seconds
// ("2024-08-04T11:28:40Z").
const timeFormat = "2006-01-02T15:04:05Z"

// none is what Lattice writes for an empty string field.
const none = "-"

// appendRecord appends rec as one JSON object and a newline. Field names
// and types are Lattice's: strings ("-" when empty) except responseCode,
// bytesReceived, bytesSent and the three durations (milliseconds), which
// are numbers.
func (w *Writer) appendRecord(b []byte, rec *proxy.Record) []byte {
	b = append(b, `{"startTime":"`...)
	b = rec.Start.UTC().AppendFormat(b, timeFormat)
	b = append(b, '"')
	b = field(b, "serviceNetworkArn", rec.NetworkARN)
	b = field(b, "serviceArn", rec.ServiceARN)
	b = field(b, "targetGroupArn", rec.TargetGroupARN)
	b = field(b, "listenerId", rec.ListenerID)
	b = field(b, "listenerType", rec.ListenerProtocol)
	b = field(b, "sourceVpcArn", w.cfg.VPCArn)
	b = field(b, "sourceVpcId", w.cfg.VPCID)
	dst := ""
	if w.cfg.DestinationVPC != nil && rec.TargetGroupID != "" {
		dst = w.cfg.DestinationVPC(rec.TargetGroupID)
	}
	b = field(b, "destinationVpcId", dst)
	b = field(b, "sourceIpPort", rec.SourceAddr)
	b = field(b, "targetIpPort", rec.TargetAddr)
	b = field(b, "requestMethod", rec.Method)
	b = field(b, "requestPath", rec.Path)
	b = field(b, "protocol", rec.Proto)
	b = number(b, "responseCode", int64(rec.Status))
	b = number(b, "bytesReceived", rec.BytesReceived)
	b = number(b, "bytesSent", rec.BytesSent)
	b = number(b, "duration", millis(rec.Duration))
	b = number(b, "requestToTargetDuration", millis(rec.RequestToTarget))
	b = number(b, "responseFromTargetDuration", millis(rec.ResponseFromTarget))
	b = field(b, "userAgent", rec.UserAgent)
	b = field(b, "hostHeader", rec.Host)
	b = field(b, "serverNameIndication", rec.SNI)
	b = field(b, "sslCipher", rec.TLSCipher)
	b = field(b, "tlsVersion", rec.TLSVersion)
	b = field(b, "resolvedUser", rec.CallerPrincipal)
	b = field(b, "authDeniedReason", rec.AuthDeniedReason)
	b = field(b, "failureReason", rec.FailureReason)
	b = field(b, "callerPrincipal", rec.CallerPrincipal)
	// Trellis has no organisations. The X.509 fields are those of an
	// mTLS caller's certificate (Lattice fills them for Roles Anywhere).
	b = append(b, `,"callerPrincipalOrgID":"-"`...)
	var x identity.X509
	if rec.CallerX509 != nil {
		x = *rec.CallerX509
	}
	b = field(b, "callerX509IssuerOU", x.IssuerOU)
	b = field(b, "callerX509SubjectCN", x.SubjectCN)
	b = field(b, "callerX509SANNameCN", "")
	b = field(b, "callerX509SANDNS", x.SANDNS)
	b = field(b, "callerX509SANURI", x.SANURI)
	b = append(b, '}')
	return append(b, '\n')
}

func millis(d time.Duration) int64 { return d.Milliseconds() }

func field(b []byte, name, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	if v == "" {
		v = none
	}
	return appendString(b, v)
}

func number(b []byte, name string, v int64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

const hex = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// control characters and the line separators U+2028/U+2029 are escaped, so
// a record is always one valid line whatever a client sent.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
