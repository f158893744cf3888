package h1wire

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// Relay streams message bodies between two connections' buffers: bytes
// of a known length, bodies delimited by the end of the connection, and
// chunked bodies (checked, and re-framed or not). Large transfers bypass
// the buffers with a copy buffer taken from bufs and kept in big until
// the owner gives it back.
type Relay struct {
	Bufs *sync.Pool // *[]byte copy buffers
	Big  *[]byte
	Num  [24]byte
	// Trailer, if set, is given each trailer field of a chunked body
	// CopyChunked relays ("name: value", checked, without its line end;
	// valid until Trailer returns), whether or not it is forwarded.
	Trailer func(field []byte)
}

// Release gives the copy buffer back.
func (h *Relay) Release() {
	if h.Big != nil {
		h.Bufs.Put(h.Big)
		h.Big = nil
	}
}

// waitMore reads more into src. What dst holds is flushed first, so that
// the peer gets what has arrived before this goroutine blocks (streams,
// gRPC, server-sent events flow without further ado), and src's read
// deadline becomes the body's (Buf.BodyDeadline).
func (h *Relay) waitMore(src *Buf, dst *bufio.Writer, limit int) (rerr, werr error) {
	if dst.Buffered() > 0 {
		if err := dst.Flush(); err != nil {
			return nil, err
		}
	}
	src.BodyDeadline()
	return src.Fill(limit), nil
}

// CopyN relays n payload bytes (n < 0: until src ends) from src to dst,
// as chunks when chunkOut is set. Large transfers bypass the buffers
// with a pooled 32 KiB copy buffer.
func (h *Relay) CopyN(src *Buf, dst *bufio.Writer, n int64, chunkOut bool) (written int64, rerr, werr error) {
	for n != 0 {
		if src.Buffered() == 0 {
			if n < 0 || n > int64(len(src.B)) {
				m, rerr, werr := h.readBig(src, dst, n)
				if werr != nil || rerr != nil {
					if n < 0 && rerr == io.EOF {
						rerr = nil
					}
					return written, rerr, werr
				}
				if werr = h.emit(dst, (*h.Big)[:m], chunkOut); werr != nil {
					return written, nil, werr
				}
				written += int64(m)
				if n > 0 {
					n -= int64(m)
				}
				continue
			}
			if rerr, werr = h.waitMore(src, dst, len(src.B)); rerr != nil || werr != nil {
				return written, rerr, werr
			}
		}
		take := src.Buffered()
		if n >= 0 && int64(take) > n {
			take = int(n)
		}
		if werr = h.emit(dst, src.B[src.R:src.R+take], chunkOut); werr != nil {
			return written, nil, werr
		}
		src.R += take
		written += int64(take)
		if n > 0 {
			n -= int64(take)
		}
	}
	return written, nil, nil
}

// readBig reads up to n bytes (any when n < 0) of src's connection into
// the pooled copy buffer, src's own buffer being empty.
func (h *Relay) readBig(src *Buf, dst *bufio.Writer, n int64) (int, error, error) {
	if dst.Buffered() > 0 {
		if err := dst.Flush(); err != nil {
			return 0, nil, err
		}
	}
	src.BodyDeadline()
	if h.Big == nil {
		h.Big = h.Bufs.Get().(*[]byte)
	}
	buf := *h.Big
	if n >= 0 && int64(len(buf)) > n {
		buf = buf[:n]
	}
	m, err := src.C.Read(buf)
	if m > 0 {
		return m, nil, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return 0, err, nil
}

// emit writes p, as one chunk when chunked is set.
func (h *Relay) emit(dst *bufio.Writer, p []byte, chunked bool) error {
	if chunked {
		_, _ = dst.Write(strconv.AppendInt(h.Num[:0], int64(len(p)), 16))
		_, _ = dst.WriteString("\r\n")
	}
	_, err := dst.Write(p)
	if chunked && err == nil {
		_, err = dst.WriteString("\r\n")
	}
	return err
}

// CopyChunked relays a chunked body from src to dst, re-framed as chunks
// when chunkOut is set (or as bare data for an HTTP/1.0 client, trailers
// dropped). strict applies the guard's rules to a client's body: CRLF
// line ends and trailer fields checked like header fields; a target's
// body may end its chunk-size lines with a bare LF, as Go's client allows.
// Trailers are forwarded (chunkOut) and count toward maxTrailer bytes.
func (h *Relay) CopyChunked(src *Buf, dst *bufio.Writer, strict, chunkOut bool, maxTrailer int) (n int64, bad, rerr, werr error) {
	for {
		line, bad, rerr, werr := h.readLine(src, dst, maxChunkLine, strict)
		if bad != nil || rerr != nil || werr != nil {
			return n, bad, rerr, werr
		}
		size, err := chunkSize(trimEOL(line))
		if err != nil {
			return n, err, nil, nil
		}
		if size == 0 {
			break
		}
		if chunkOut {
			_, _ = dst.Write(strconv.AppendInt(h.Num[:0], size, 16))
			_, _ = dst.WriteString("\r\n")
		}
		m, rerr, werr := h.CopyN(src, dst, size, false)
		n += m
		if rerr != nil || werr != nil {
			return n, nil, rerr, werr
		}
		for src.Buffered() < 2 {
			if rerr, werr := h.waitMore(src, dst, len(src.B)); rerr != nil || werr != nil {
				return n, nil, rerr, werr
			}
		}
		if src.B[src.R] != '\r' || src.B[src.R+1] != '\n' {
			return n, &FramingError{"chunk data not followed by CRLF"}, nil, nil
		}
		src.R += 2
		if chunkOut {
			_, _ = dst.WriteString("\r\n")
		}
	}
	if chunkOut {
		_, _ = dst.WriteString("0\r\n")
	}
	total := 0
	for {
		line, bad, rerr, werr := h.readLine(src, dst, maxTrailer, strict)
		if bad != nil || rerr != nil || werr != nil {
			return n, bad, rerr, werr
		}
		if total += len(line); total > maxTrailer {
			return n, &FramingError{"trailer section too large"}, nil, nil
		}
		field := trimEOL(line)
		if len(field) == 0 {
			break
		}
		if strict {
			if _, err := checkFieldLine(line); err != nil {
				return n, err, nil, nil
			}
		} else if c := bytes.IndexByte(field, ':'); c <= 0 || !isToken(field[:c]) || !validValue(field[c+1:]) {
			return n, ErrBadResponse, nil, nil
		}
		if h.Trailer != nil {
			h.Trailer(field)
		}
		if chunkOut {
			_, _ = dst.Write(field)
			_, _ = dst.WriteString("\r\n")
		}
	}
	if chunkOut {
		_, werr = dst.WriteString("\r\n")
	}
	return n, nil, nil, werr
}

// readLine returns the next line of src with its LF, consumed; strict
// requires CRLF and no other CR.
func (h *Relay) readLine(src *Buf, dst *bufio.Writer, limit int, strict bool) (line []byte, bad, rerr, werr error) {
	scan := 0
	for {
		if i := bytes.IndexByte(src.B[src.R+scan:src.W], '\n'); i >= 0 {
			end := src.R + scan + i + 1
			line = src.B[src.R:end]
			src.R = end
			if strict && (len(line) < 2 || line[len(line)-2] != '\r') {
				return nil, &FramingError{"bare LF"}, nil, nil
			}
			return line, nil, nil, nil
		}
		scan = src.Buffered()
		if scan > limit {
			return nil, &FramingError{"line too long"}, nil, nil
		}
		if rerr, werr = h.waitMore(src, dst, max(limit+2, len(src.B))); rerr != nil || werr != nil {
			if rerr == ErrHeadTooLarge {
				return nil, &FramingError{"line too long"}, nil, nil
			}
			return nil, nil, rerr, werr
		}
	}
}

// WriteResponseHead writes the status line and the fields of a response
// head being relayed: hop-by-hop fields and those Connection names left
// out (Content-Length frames the body whatever Connection says, and gives
// way to Transfer-Encoding when chunkedIn), Trailer only when the body
// goes out chunked (chunkOut). The caller adds Date, the framing and the
// connection's fate, then the empty line. A status line without reason
// phrase gets net/http's.
func (h *Relay) WriteResponseHead(w *bufio.Writer, rh *Head, http10, chunkedIn, chunkOut bool) {
	if http10 {
		_, _ = w.WriteString("HTTP/1.0 ")
	} else {
		_, _ = w.WriteString("HTTP/1.1 ")
	}
	_, _ = w.Write(strconv.AppendInt(h.Num[:0], int64(rh.Status), 10))
	if len(rh.Reason) > 1 {
		_, _ = w.Write(rh.Reason)
	} else {
		// No reason phrase: the status line still needs its space.
		_ = w.WriteByte(' ')
		_, _ = w.WriteString(http.StatusText(rh.Status))
	}
	_, _ = w.WriteString("\r\n")
	for i := range rh.Fields {
		f := &rh.Fields[i]
		switch f.Kind {
		case FieldConnection, FieldTE, FieldTransferEncoding, FieldHop:
			continue
		case FieldTrailer:
			if !chunkOut {
				continue
			}
		case FieldContentLength:
			if chunkedIn {
				continue // Transfer-Encoding wins (RFC 9112 §6.3)
			}
		default:
			if len(rh.ConnList) > 0 && rh.Listed(f.Name) {
				continue
			}
		}
		_, _ = w.Write(f.Name)
		_, _ = w.WriteString(": ")
		_, _ = w.Write(f.Value)
		_, _ = w.WriteString("\r\n")
	}
}
