//go:build !msan && !asan

package rawio

const instrumented = false
