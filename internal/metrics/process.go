package metrics

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
)

// NewProcessCollector returns the process's and the Go runtime's own
// metrics. Those Prometheus's Go client also exports keep its names:
//
//	process_cpu_seconds_total, process_resident_memory_bytes,
//	process_virtual_memory_bytes, process_open_fds, process_max_fds,
//	process_start_time_seconds (Linux, from /proc/self), go_goroutines,
//	go_threads, go_info, go_memstats_alloc_bytes,
//	go_memstats_heap_alloc_bytes, go_memstats_sys_bytes,
//	go_sched_gomaxprocs_threads, go_gc_gogc_percent,
//	go_gc_gomemlimit_bytes;
//
// and go_gc_cycles_total counts completed collections.
func NewProcessCollector() Collector {
	return &processCollector{
		pageSize: uint64(os.Getpagesize()),
		samples: []metrics.Sample{
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/total:bytes"},
			{Name: "/gc/cycles/total:gc-cycles"},
			{Name: "/sched/gomaxprocs:threads"},
			{Name: "/gc/gogc:percent"},
			{Name: "/gc/gomemlimit:bytes"},
		},
	}
}

type processCollector struct {
	pageSize uint64
	samples  []metrics.Sample
}

// ticksPerSecond is USER_HZ, 100 on every Linux architecture Go runs on.
const ticksPerSecond = 100

var processFamilies = []desc{
	{name: "go_gc_cycles_total", help: "Completed garbage-collection cycles.", typ: "counter"},
	{name: "go_gc_gogc_percent", help: "The heap growth percentage that triggers a collection (GOGC).", typ: "gauge"},
	{name: "go_gc_gomemlimit_bytes", help: "The Go runtime's soft memory limit (GOMEMLIMIT).", typ: "gauge"},
	{name: "go_goroutines", help: "Goroutines that currently exist.", typ: "gauge"},
	{name: "go_info", help: "The Go version the binary was built with.", typ: "gauge"},
	{name: "go_memstats_alloc_bytes", help: "Bytes of heap objects, live and not yet swept.", typ: "gauge"},
	{name: "go_memstats_heap_alloc_bytes", help: "Bytes of heap objects, live and not yet swept.", typ: "gauge"},
	{name: "go_memstats_sys_bytes", help: "Bytes of memory the Go runtime has mapped.", typ: "gauge"},
	{name: "go_sched_gomaxprocs_threads", help: "The number of Ps: goroutines that run at once (GOMAXPROCS).", typ: "gauge"},
	{name: "go_threads", help: "Operating-system threads of the process.", typ: "gauge"},
	{name: "process_cpu_seconds_total", help: "User and system CPU time spent, in seconds.", typ: "counter"},
	{name: "process_max_fds", help: "The limit on open file descriptors.", typ: "gauge"},
	{name: "process_open_fds", help: "Open file descriptors.", typ: "gauge"},
	{name: "process_resident_memory_bytes", help: "Resident memory size, in bytes.", typ: "gauge"},
	{name: "process_start_time_seconds", help: "Start time of the process since the Unix epoch, in seconds.", typ: "gauge"},
	{name: "process_virtual_memory_bytes", help: "Virtual memory size, in bytes.", typ: "gauge"},
}

func (c *processCollector) names() []string {
	out := make([]string, len(processFamilies))
	for i, d := range processFamilies {
		out[i] = d.name
	}
	return out
}

func (c *processCollector) appendTo(b []byte) []byte {
	samples := append([]metrics.Sample(nil), c.samples...)
	metrics.Read(samples)
	val := func(i int) (float64, bool) {
		switch samples[i].Value.Kind() {
		case metrics.KindUint64:
			return float64(samples[i].Value.Uint64()), true
		case metrics.KindFloat64:
			return samples[i].Value.Float64(), true
		}
		return 0, false
	}
	st, stOK := readStat()
	for _, d := range processFamilies {
		var v float64
		ok := true
		switch d.name {
		case "go_gc_cycles_total":
			v, ok = val(2)
		case "go_gc_gogc_percent":
			v, ok = val(4)
		case "go_gc_gomemlimit_bytes":
			v, ok = val(5)
		case "go_sched_gomaxprocs_threads":
			v, ok = val(3)
		case "go_threads":
			v, ok = float64(st.threads), stOK
		case "go_goroutines":
			v = float64(runtime.NumGoroutine())
		case "go_info":
			b = d.appendHeader(b)
			b = appendSeries(b, d.name, "", []string{"version"}, []string{runtime.Version()}, "", "")
			b = append(b, " 1\n"...)
			continue
		case "go_memstats_alloc_bytes", "go_memstats_heap_alloc_bytes":
			v, ok = val(0)
		case "go_memstats_sys_bytes":
			v, ok = val(1)
		case "process_cpu_seconds_total":
			v, ok = float64(st.utime+st.stime)/ticksPerSecond, stOK
		case "process_max_fds":
			v, ok = maxFDs()
		case "process_open_fds":
			fds, err := os.ReadDir("/proc/self/fd")
			v, ok = float64(len(fds)), err == nil
		case "process_resident_memory_bytes":
			v, ok = float64(st.rss*c.pageSize), stOK
		case "process_start_time_seconds":
			bt, btOK := bootTime()
			v, ok = bt+float64(st.start)/ticksPerSecond, stOK && btOK
		case "process_virtual_memory_bytes":
			v, ok = float64(st.vsize), stOK
		}
		if !ok {
			continue
		}
		b = d.appendHeader(b)
		b = append(b, d.name...)
		b = append(b, ' ')
		b = append(appendFloat(b, v), '\n')
	}
	return b
}

// stat is what /proc/self/stat says of the process.
type stat struct {
	utime, stime, threads, start, vsize, rss uint64
}

func readStat() (stat, bool) {
	raw, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return stat{}, false
	}
	return parseStat(raw)
}

// parseStat reads fields 14, 15, 20, 22, 23 and 24 of a /proc/PID/stat
// line.
// The command name (field 2) may hold spaces and parentheses, so fields
// are counted from the last ')'.
func parseStat(raw []byte) (stat, bool) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return stat{}, false
	}
	f := bytes.Fields(raw[i+1:]) // f[0] is field 3
	if len(f) < 22 {
		return stat{}, false
	}
	var s stat
	for _, x := range []struct {
		field int
		dst   *uint64
	}{{14, &s.utime}, {15, &s.stime}, {20, &s.threads}, {22, &s.start}, {23, &s.vsize}, {24, &s.rss}} {
		n, err := strconv.ParseUint(string(f[x.field-3]), 10, 64)
		if err != nil {
			return stat{}, false
		}
		*x.dst = n
	}
	return s, true
}

// bootTime is the btime line of /proc/stat: when the system booted, in
// seconds since the Unix epoch.
func bootTime() (float64, bool) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(raw) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			return float64(n), err == nil
		}
	}
	return 0, false
}
