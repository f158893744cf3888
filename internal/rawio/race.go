//go:build race

package rawio

import (
	"runtime"
	"unsafe"
)

// Raw system calls are invisible to the race detector, which package
// syscall tells what its reads and writes do. These calls tell it the
// same: which bytes of a buffer a read filled and a write read, and that
// a write happens before the read that receives its bytes (ioSync plays
// the part of syscall's variable of the same name, for raw calls).

var ioSync int64

func raceWrote(p []byte) {
	if len(p) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&p[0]), len(p))
	}
}

func raceRead(p []byte) {
	if len(p) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&p[0]), len(p))
	}
}

func raceAcquire()      { runtime.RaceAcquire(unsafe.Pointer(&ioSync)) }
func raceReleaseMerge() { runtime.RaceReleaseMerge(unsafe.Pointer(&ioSync)) }

// raceEnabled says the race detector is on (it allocates).
const raceEnabled = true
