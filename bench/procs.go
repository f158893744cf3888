package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a process the harness started, in its own process group so that
// stopping it also stops the workers it forked (nginx).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// start runs cmd with its output in dir/name.log.
func start(dir, name string, cmd *exec.Cmd) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process group the harness created for p: SIGTERM, then
// SIGKILL after 5 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// lastLog returns the last line of p's log, for error messages.
func (p *proc) lastLog() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// rssKB sums VmRSS over pid and its descendants. Pages shared between
// processes (nginx's master and workers) count once per process, as ps
// shows them.
func rssKB(pid int) (int, error) {
	tree, err := descendants(pid)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, p := range tree {
		kb, err := vmRSS(p)
		if err != nil {
			if p == pid {
				return 0, err
			}
			continue
		}
		total += kb
	}
	return total, nil
}

// descendants returns pid followed by its descendants.
func descendants(pid int) ([]int, error) {
	children := map[int][]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name may contain spaces; fields resume after ")".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], n)
	}
	var tree []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = append(queue[1:], children[p]...)
		tree = append(tree, p)
	}
	return tree, nil
}

// treeTicks is the CPU time (cpuTicks) used so far by each running
// process of pids and their descendants, by pid. Comparing two readings
// pid by pid, a process that ends between them drops out rather than
// taking its time off the others'.
func treeTicks(pids []int) map[int]int64 {
	ticks := map[int]int64{}
	for _, pid := range pids {
		tree, err := descendants(pid)
		if err != nil {
			continue
		}
		for _, p := range tree {
			if t, err := cpuTicks(p); err == nil {
				ticks[p] = t
			}
		}
	}
	return ticks
}

func vmRSS(pid int) (int, error) {
	st, err := procStatus(pid)
	if err != nil {
		return 0, err
	}
	kb, ok := st["VmRSS"]
	if !ok {
		return 0, errors.New("no VmRSS")
	}
	return kb, nil
}

// procStatus reads the kB fields of /proc/<pid>/status (VmRSS, VmHWM,
// RssAnon, RssFile, ...).
func procStatus(pid int) (map[string]int, error) { return procKB(pid, "status") }

// procKB reads the kB fields of /proc/<pid>/<file>: status, or
// smaps_rollup (Pss, Pss_Anon, Pss_File, ...).
func procKB(pid int, file string) (map[string]int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		v, kb := strings.CutSuffix(strings.TrimSpace(v), " kB")
		if !ok || !kb {
			continue
		}
		if n, err := strconv.Atoi(v); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100
// on every Linux architecture Go supports.
const userHZ = 100

// cpuTicks is the user plus system CPU time pid has used, in 1/userHZ s.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/<pid>/stat")
	}
	// After ")": state is field 3 of proc(5), utime 14, stime 15.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/<pid>/stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + s, nil
}

// memUse is the memory (and idle CPU) of one part of a target.
type memUse struct {
	name  string
	aside bool
	// At the end of the idle window: VmRSS and its anonymous and
	// file-backed shares (RssAnon, RssFile; file pages are the binary's
	// code and data, shared with other processes running it).
	idleKB, anonKB, fileKB int
	// pssKB is the proportional set size then (smaps_rollup's Pss): each
	// shared page counted as a share among the processes mapping it.
	pssKB int
	// idleCPU is the CPU used during the idle window, in cores.
	idleCPU float64
	// peakKB is the highest VmRSS sampled during the load, afterKB VmRSS
	// after it, hwmKB VmHWM then (the peak over the process's life,
	// setup included).
	peakKB, afterKB, hwmKB int
	err                    string
}

// idleWindow is how long a target with parts is left alone after setup
// before its idle memory is read.
const idleWindow = 5 * time.Second

// idleUse leaves parts alone for window, then reads their memory and the
// CPU they used meanwhile.
func idleUse(ctx context.Context, parts []part, window time.Duration) []memUse {
	mem := make([]memUse, len(parts))
	before := make([]int64, len(parts))
	for i, pt := range parts {
		mem[i] = memUse{name: pt.name, aside: pt.aside}
		before[i], _ = cpuTicks(pt.p.cmd.Process.Pid)
	}
	began := time.Now()
	select {
	case <-ctx.Done():
	case <-time.After(window):
	}
	elapsed := time.Since(began).Seconds()
	for i, pt := range parts {
		pid := pt.p.cmd.Process.Pid
		st, err := procStatus(pid)
		if err != nil || pt.p.exited() {
			mem[i].err = fmt.Sprintf("%s is gone: %s", pt.name, pt.p.lastLog())
			continue
		}
		mem[i].idleKB, mem[i].anonKB, mem[i].fileKB = st["VmRSS"], st["RssAnon"], st["RssFile"]
		if sm, err := procKB(pid, "smaps_rollup"); err == nil {
			mem[i].pssKB = sm["Pss"]
		}
		if after, err := cpuTicks(pid); err == nil && elapsed > 0 {
			mem[i].idleCPU = float64(after-before[i]) / userHZ / elapsed
		}
	}
	return mem
}

// rssWatch samples the VmRSS of some processes until finish.
type rssWatch struct {
	parts []part
	peak  []int
	done  chan struct{}
	ended chan struct{}
}

// watchRSS starts sampling the VmRSS of parts every interval.
func watchRSS(parts []part, every time.Duration) *rssWatch {
	w := &rssWatch{parts: parts, peak: make([]int, len(parts)), done: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(w.ended)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

func (w *rssWatch) sample() {
	for i, pt := range w.parts {
		if kb, err := vmRSS(pt.p.cmd.Process.Pid); err == nil {
			w.peak[i] = max(w.peak[i], kb)
		}
	}
}

// finish stops sampling and records the peaks, VmRSS and VmHWM in mem
// (one entry per part, in order).
func (w *rssWatch) finish(mem []memUse) {
	close(w.done)
	<-w.ended
	for i, pt := range w.parts {
		if i >= len(mem) {
			break
		}
		mem[i].peakKB = w.peak[i]
		if st, err := procStatus(pt.p.cmd.Process.Pid); err == nil && !pt.p.exited() {
			mem[i].afterKB, mem[i].hwmKB = st["VmRSS"], st["VmHWM"]
		} else if mem[i].err == "" {
			mem[i].err = fmt.Sprintf("%s is gone: %s", pt.name, pt.p.lastLog())
		}
	}
}

// portFree reports whether addr can be bound now.
func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// waitBackend polls url (with Host host) until it answers 200 with the
// backend's marker header, p exits, or timeout passes.
func waitBackend(ctx context.Context, url, host string, p *proc, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %s", p.name, p.lastLog())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 && resp.Header.Get("X-Bench-Backend") == "1" {
				return nil
			}
			last = fmt.Sprintf("HTTP %d", resp.StatusCode)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("no backend answer from %s within %v (last: %s)", url, timeout, last)
}
