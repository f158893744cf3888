//go:build msan || asan

package rawio

// The memory and address sanitizers cannot see what raw system calls do
// to buffers: their builds use net.TCPConn's own Read and Write.
const instrumented = true
