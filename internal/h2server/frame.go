package h2server

import (
	"encoding/binary"
	"fmt"
)

// Frame types (RFC 9113 §6).
const (
	frameData         uint8 = 0x0
	frameHeaders      uint8 = 0x1
	framePriority     uint8 = 0x2
	frameRSTStream    uint8 = 0x3
	frameSettings     uint8 = 0x4
	framePushPromise  uint8 = 0x5
	framePing         uint8 = 0x6
	frameGoAway       uint8 = 0x7
	frameWindowUpdate uint8 = 0x8
	frameContinuation uint8 = 0x9
)

// Frame flags.
const (
	flagEndStream  uint8 = 0x1
	flagAck        uint8 = 0x1
	flagEndHeaders uint8 = 0x4
	flagPadded     uint8 = 0x8
	flagPriority   uint8 = 0x20
)

// Error codes (RFC 9113 §7).
type errCode uint32

const (
	errNoError         errCode = 0x0
	errProtocol        errCode = 0x1
	errInternal        errCode = 0x2
	errFlowControl     errCode = 0x3
	errStreamClosed    errCode = 0x5
	errFrameSize       errCode = 0x6
	errRefusedStream   errCode = 0x7
	errCompression     errCode = 0x9
	errEnhanceYourCalm errCode = 0xb
)

var errCodeNames = [...]string{
	"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
	"SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
	"CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
	"INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
}

func (c errCode) String() string {
	if int(c) < len(errCodeNames) {
		return errCodeNames[c]
	}
	return fmt.Sprintf("error code 0x%x", uint32(c))
}

// Settings (RFC 9113 §6.5.2).
const (
	settingHeaderTableSize      uint16 = 0x1
	settingEnablePush           uint16 = 0x2
	settingMaxConcurrentStreams uint16 = 0x3
	settingInitialWindowSize    uint16 = 0x4
	settingMaxFrameSize         uint16 = 0x5
	settingMaxHeaderListSize    uint16 = 0x6
)

const (
	frameHeaderLen    = 9
	defaultWindow     = 65535
	defaultFrameSize  = 16384
	maxFrameSizeLimit = 1<<24 - 1
	maxWindow         = 1<<31 - 1
	clientPreface     = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
)

// frameHeader is the 9 bytes before every frame's payload.
type frameHeader struct {
	length uint32
	typ    uint8
	flags  uint8
	stream uint32
}

func parseFrameHeader(b []byte) frameHeader {
	return frameHeader{
		length: uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		typ:    b[3],
		flags:  b[4],
		stream: binary.BigEndian.Uint32(b[5:9]) & (1<<31 - 1),
	}
}

func (h frameHeader) has(f uint8) bool { return h.flags&f != 0 }

// appendFrameHeader appends a frame header to b.
func appendFrameHeader(b []byte, length int, typ, flags uint8, stream uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), typ, flags,
		byte(stream>>24), byte(stream>>16), byte(stream>>8), byte(stream))
}

func appendUint32(b []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(b, v)
}

// connError ends the connection with a GOAWAY carrying code.
type connError struct {
	code   errCode
	reason string
}

func (e connError) Error() string { return "connection error " + e.code.String() + ": " + e.reason }

// streamError resets one stream with code.
type streamError struct {
	stream uint32
	code   errCode
	reason string
}

func (e streamError) Error() string {
	return fmt.Sprintf("stream %d error %s: %s", e.stream, e.code, e.reason)
}
