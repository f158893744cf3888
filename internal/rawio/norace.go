//go:build !race

package rawio

func raceWrote([]byte)  {}
func raceRead([]byte)   {}
func raceAcquire()      {}
func raceReleaseMerge() {}
