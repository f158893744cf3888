package h2server

import (
	"encoding/binary"
)

// handle acts on one frame read by the serve loop. It returns a
// streamError to reset a stream, a connError to end the connection.
func (c *conn) handle(fh frameHeader) error {
	p := c.payload[:fh.length]
	if c.blockFor != 0 && fh.typ != frameContinuation {
		return connError{errProtocol, "a header block was interrupted by another frame"}
	}
	switch fh.typ {
	case frameData:
		return c.handleData(fh, p)
	case frameHeaders:
		return c.handleHeaders(fh, p)
	case framePriority:
		return c.handlePriority(fh, p)
	case frameRSTStream:
		return c.handleRST(fh, p)
	case frameSettings:
		return c.handleSettings(fh, p)
	case framePushPromise:
		return connError{errProtocol, "PUSH_PROMISE from a client"}
	case framePing:
		return c.handlePing(fh, p)
	case frameGoAway:
		if fh.stream != 0 {
			return connError{errProtocol, "GOAWAY on a stream"}
		}
		if fh.length < 8 {
			return connError{errFrameSize, "short GOAWAY"}
		}
		c.mu.Lock()
		c.goAwayRecv = true
		c.mu.Unlock()
		return nil
	case frameWindowUpdate:
		return c.handleWindowUpdate(fh, p)
	case frameContinuation:
		return c.handleContinuation(fh, p)
	}
	return nil // unknown frame types are ignored (§5.5)
}

// stripPadding removes the padding of a PADDED frame.
func stripPadding(fh frameHeader, p []byte) ([]byte, error) {
	if !fh.has(flagPadded) {
		return p, nil
	}
	if len(p) < 1 {
		return nil, connError{errFrameSize, "padded frame without pad length"}
	}
	pad := int(p[0])
	p = p[1:]
	if pad > len(p) {
		return nil, connError{errProtocol, "padding longer than the frame"}
	}
	return p[:len(p)-pad], nil
}

// streamState tells what the client may send on a stream ID.
type streamState uint8

const (
	stIdle   streamState = iota // never opened
	stOpen                      // open or half-closed (local): the client may send
	stHalf                      // half-closed (remote): the client has ended its side
	stClosed                    // closed, or reset
)

func (c *conn) state(id uint32) (*stream, streamState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[id]
	switch {
	case s != nil && s.remoteDone:
		return s, stHalf
	case s != nil:
		return s, stOpen
	case id > c.maxID:
		return nil, stIdle
	}
	return nil, stClosed
}

func (c *conn) handleData(fh frameHeader, p []byte) error {
	if fh.stream == 0 {
		return connError{errProtocol, "DATA on stream 0"}
	}
	// Flow control counts the whole payload, padding included, whatever
	// becomes of the frame.
	n := int32(len(p))
	c.mu.Lock()
	if n > c.recvWindow {
		c.mu.Unlock()
		return connError{errFlowControl, "DATA beyond the connection's window"}
	}
	c.recvWindow -= n
	c.mu.Unlock()
	data, err := stripPadding(fh, p)
	if err != nil {
		return err
	}
	s, st := c.state(fh.stream)
	switch st {
	case stIdle:
		return connError{errProtocol, "DATA on an idle stream"}
	case stHalf, stClosed:
		c.refundConn(n)
		if st == stClosed && c.wasReset(fh.stream) {
			return nil // sent before the client saw our RST_STREAM
		}
		return streamError{fh.stream, errStreamClosed, "DATA after the end of the stream"}
	}
	c.mu.Lock()
	if n > s.recvWindow {
		c.mu.Unlock()
		c.refundConn(n)
		return streamError{fh.stream, errFlowControl, "DATA beyond the stream's window"}
	}
	s.recvWindow -= n
	if pad := n - int32(len(data)); pad > 0 {
		c.refundConnLocked(pad)
		c.refundStreamLocked(s, pad)
	}
	c.mu.Unlock()
	if err := s.body.deliver(data, fh.has(flagEndStream)); err != nil {
		c.refundConn(int32(len(data)))
		return streamError{fh.stream, errProtocol, err.Error()}
	}
	if fh.has(flagEndStream) {
		c.endRemote(s)
	}
	return nil
}

func (c *conn) handleHeaders(fh frameHeader, p []byte) error {
	if fh.stream == 0 {
		return connError{errProtocol, "HEADERS on stream 0"}
	}
	block, err := stripPadding(fh, p)
	if err != nil {
		return err
	}
	if fh.has(flagPriority) {
		if len(block) < 5 {
			return connError{errFrameSize, "HEADERS too short for its priority"}
		}
		dep := binary.BigEndian.Uint32(block) & (1<<31 - 1)
		block = block[5:]
		if dep == fh.stream {
			// Decode anyway: the HPACK state must follow the client's.
			c.startBlock(fh, block)
			c.blockFor = 0
			if err := c.decodeBlock(); err != nil {
				return err
			}
			c.mu.Lock()
			c.maxID = max(c.maxID, fh.stream)
			c.mu.Unlock()
			return streamError{fh.stream, errProtocol, "stream depends on itself"}
		}
	}
	c.startBlock(fh, block)
	if !fh.has(flagEndHeaders) {
		if len(c.block) > 2*c.maxHeader {
			return connError{errEnhanceYourCalm, "header block too large"}
		}
		return nil
	}
	return c.endBlock()
}

func (c *conn) startBlock(fh frameHeader, block []byte) {
	c.block = append(c.block[:0], block...)
	c.blockFlags = fh.flags
	c.blockFor = fh.stream
	if fh.has(flagEndHeaders) {
		c.blockFor = 0
	}
	c.headerStream = fh.stream
}

func (c *conn) handleContinuation(fh frameHeader, p []byte) error {
	if c.blockFor == 0 || fh.stream != c.blockFor {
		return connError{errProtocol, "CONTINUATION without a header block to continue"}
	}
	c.block = append(c.block, p...)
	if len(c.block) > 2*c.maxHeader {
		return connError{errEnhanceYourCalm, "header block too large"}
	}
	if !fh.has(flagEndHeaders) {
		return nil
	}
	c.blockFor = 0
	return c.endBlock()
}

// decodeBlock decodes the header block collected in c.block into
// c.fields. A decoding failure is a connection error: the HPACK state is
// lost.
func (c *conn) decodeBlock() error {
	c.fields, c.fieldsSize, c.fieldsBad = c.fields[:0], 0, false
	if _, err := c.dec.Write(c.block); err != nil {
		return connError{errCompression, err.Error()}
	}
	if err := c.dec.Close(); err != nil {
		return connError{errCompression, err.Error()}
	}
	return nil
}

// endBlock acts on a complete header block: a new request, or the
// trailers of an open one.
func (c *conn) endBlock() error {
	id := c.headerStream
	if err := c.decodeBlock(); err != nil {
		return err
	}
	endStream := c.blockFlags&flagEndStream != 0
	s, st := c.state(id)
	switch st {
	case stClosed:
		if c.wasReset(id) {
			return nil // sent before the client saw our RST_STREAM
		}
		return connError{errStreamClosed, "HEADERS on a closed stream"}
	case stHalf:
		return connError{errStreamClosed, "HEADERS on a closed stream"}
	case stOpen:
		if !endStream {
			return streamError{id, errProtocol, "trailers without END_STREAM"}
		}
		if c.fieldsBad {
			return streamError{id, errProtocol, "trailers too large"}
		}
		if err := s.body.setTrailers(c.fields); err != nil {
			return streamError{id, errProtocol, err.Error()}
		}
		c.endRemote(s)
		return nil
	}
	if id%2 == 0 {
		return connError{errProtocol, "client opened an even-numbered stream"}
	}
	c.mu.Lock()
	c.maxID = id
	goingAway := c.goingAway
	full := c.running >= c.srv.maxStreams()
	c.mu.Unlock()
	if goingAway {
		return nil // after our GOAWAY: ignored (§6.8)
	}
	if full {
		return streamError{id, errRefusedStream, "too many concurrent streams"}
	}
	if c.fieldsBad {
		return streamError{id, errProtocol, "request header list too large"}
	}
	s, err := c.newStream(id, c.fields, endStream)
	if err != nil {
		return streamError{id, errProtocol, err.Error()}
	}
	c.startStream(s)
	return nil
}

func (c *conn) handlePriority(fh frameHeader, p []byte) error {
	if fh.stream == 0 {
		return connError{errProtocol, "PRIORITY on stream 0"}
	}
	if len(p) != 5 {
		return streamError{fh.stream, errFrameSize, "PRIORITY of the wrong size"}
	}
	if binary.BigEndian.Uint32(p)&(1<<31-1) == fh.stream {
		return streamError{fh.stream, errProtocol, "stream depends on itself"}
	}
	return nil // priorities are not used
}

func (c *conn) handleRST(fh frameHeader, p []byte) error {
	if fh.stream == 0 {
		return connError{errProtocol, "RST_STREAM on stream 0"}
	}
	if len(p) != 4 {
		return connError{errFrameSize, "RST_STREAM of the wrong size"}
	}
	s, st := c.state(fh.stream)
	if st == stIdle {
		return connError{errProtocol, "RST_STREAM on an idle stream"}
	}
	if s != nil {
		c.mu.Lock()
		c.closeStream(s, errClientReset)
		c.mu.Unlock()
	}
	return nil
}

func (c *conn) handleSettings(fh frameHeader, p []byte) error {
	if fh.stream != 0 {
		return connError{errProtocol, "SETTINGS on a stream"}
	}
	if fh.has(flagAck) {
		if len(p) != 0 {
			return connError{errFrameSize, "SETTINGS acknowledgement with a payload"}
		}
		return nil
	}
	if len(p)%6 != 0 {
		return connError{errFrameSize, "SETTINGS of the wrong size"}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for ; len(p) > 0; p = p[6:] {
		id, v := binary.BigEndian.Uint16(p), binary.BigEndian.Uint32(p[2:])
		switch id {
		case settingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(min(v, 4096))
		case settingEnablePush:
			if v > 1 {
				return connError{errProtocol, "SETTINGS_ENABLE_PUSH not 0 or 1"}
			}
		case settingInitialWindowSize:
			if v > maxWindow {
				return connError{errFlowControl, "SETTINGS_INITIAL_WINDOW_SIZE too large"}
			}
			delta := int64(v) - int64(c.peerWindow)
			for _, s := range c.streams {
				if s.sendWindow+delta > maxWindow {
					return connError{errFlowControl, "a stream's window overflows"}
				}
				s.sendWindow += delta
			}
			c.peerWindow = int32(v)
			c.cond.Broadcast()
		case settingMaxFrameSize:
			if v < defaultFrameSize || v > maxFrameSizeLimit {
				return connError{errProtocol, "SETTINGS_MAX_FRAME_SIZE out of range"}
			}
			c.peerFrame = int(v)
		}
	}
	if !c.out.appendControl(func(b []byte) []byte { return appendFrameHeader(b, 0, frameSettings, flagAck, 0) }) {
		return connError{errEnhanceYourCalm, "the client does not read its acknowledgements"}
	}
	return nil
}

func (c *conn) handlePing(fh frameHeader, p []byte) error {
	if fh.stream != 0 {
		return connError{errProtocol, "PING on a stream"}
	}
	if len(p) != 8 {
		return connError{errFrameSize, "PING of the wrong size"}
	}
	if fh.has(flagAck) {
		return nil
	}
	c.mu.Lock()
	ok := c.out.appendControl(func(b []byte) []byte {
		return append(appendFrameHeader(b, 8, framePing, flagAck, 0), p...)
	})
	c.mu.Unlock()
	if !ok {
		return connError{errEnhanceYourCalm, "the client does not read its PING answers"}
	}
	return nil
}

func (c *conn) handleWindowUpdate(fh frameHeader, p []byte) error {
	if len(p) != 4 {
		return connError{errFrameSize, "WINDOW_UPDATE of the wrong size"}
	}
	inc := int64(binary.BigEndian.Uint32(p) & (1<<31 - 1))
	if fh.stream == 0 {
		if inc == 0 {
			return connError{errProtocol, "WINDOW_UPDATE of 0"}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.sendWindow+inc > maxWindow {
			return connError{errFlowControl, "connection window overflows"}
		}
		c.sendWindow += inc
		c.cond.Broadcast()
		return nil
	}
	s, st := c.state(fh.stream)
	if st == stIdle {
		return connError{errProtocol, "WINDOW_UPDATE on an idle stream"}
	}
	if inc == 0 {
		return streamError{fh.stream, errProtocol, "WINDOW_UPDATE of 0"}
	}
	if s == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.sendWindow+inc > maxWindow {
		return streamError{fh.stream, errFlowControl, "stream window overflows"}
	}
	s.sendWindow += inc
	c.cond.Broadcast()
	return nil
}

// refundConn gives consumed bytes back to the connection's receive
// window, in updates of at least a quarter of it.
func (c *conn) refundConn(n int32) {
	c.mu.Lock()
	c.refundConnLocked(n)
	c.mu.Unlock()
}

func (c *conn) refundConnLocked(n int32) {
	c.recvRefund += n
	if c.recvRefund >= connRecvWindow/4 {
		c.out.appendWindowUpdate(0, uint32(c.recvRefund))
		c.recvWindow += c.recvRefund
		c.recvRefund = 0
	}
}
