//go:build !race

package rawio

func raceWrote([]byte)  {}
func raceRead([]byte)   {}
func raceAcquire()      {}
func raceReleaseMerge() {}

// raceEnabled says the race detector is on (it allocates).
const raceEnabled = false
