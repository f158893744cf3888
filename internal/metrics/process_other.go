//go:build !unix

package metrics

// maxFDs is not known here; the metric is left out.
func maxFDs() (float64, bool) { return 0, false }
