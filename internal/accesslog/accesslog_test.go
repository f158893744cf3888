package accesslog

import (
	"github.com/trellis-mesh/trellis/internal/identity"

	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trellis-mesh/trellis/internal/metrics"
	"github.com/trellis-mesh/trellis/internal/proxy"
)

const (
	logGroupARN = "arn:aws:logs:us-east-1:111122223333:log-group:/aws/vpclattice/orders"
	s3ARN       = "arn:aws:s3:::lattice-logs/prod"
	firehoseARN = "arn:aws:firehose:us-east-1:111122223333:deliverystream/lattice"
	stdoutARN   = "arn:aws:logs:us-east-1:111122223333:log-group:/trellis/stdout"
)

// lockedBuffer is a concurrency-safe stdout stand-in.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func fullRecord() *proxy.Record {
	return &proxy.Record{
		Start:              time.Date(2024, 8, 4, 11, 28, 40, 123e6, time.FixedZone("CEST", 2*3600)),
		Duration:           23*time.Millisecond + 900*time.Microsecond,
		RequestToTarget:    21 * time.Millisecond,
		ResponseFromTarget: 1500 * time.Microsecond,
		ServiceID:          "svc-0cfe1f49ff3266204",
		ServiceARN:         "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0cfe1f49ff3266204",
		NetworkARN:         "arn:aws:vpc-lattice:us-east-1:111122223333:servicenetwork/sn-0e05d75deabe9f290",
		ListenerID:         "listener-0123456789abcdef0",
		ListenerARN:        "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0cfe1f49ff3266204/listener/listener-0123456789abcdef0",
		ListenerProtocol:   "HTTPS",
		TargetGroupID:      "tg-0277f384abfefe8aa",
		TargetGroupARN:     "arn:aws:vpc-lattice:us-east-1:111122223333:targetgroup/tg-0277f384abfefe8aa",
		TargetAddr:         "172.31.9.231:80",
		SourceAddr:         "10.0.183.56:57086",
		Method:             "GET",
		Path:               "/orders?id=7",
		Proto:              "HTTP/1.1",
		Host:               "orders-0cfe1f49ff3266204.7d67968.vpc-lattice-svcs.us-east-1.on.aws",
		UserAgent:          "curl/8.5.0",
		SNI:                "orders-0cfe1f49ff3266204.7d67968.vpc-lattice-svcs.us-east-1.on.aws",
		TLSVersion:         "TLSv1.3",
		TLSCipher:          "TLS_AES_128_GCM_SHA256",
		Status:             403,
		BytesReceived:      135,
		BytesSent:          1247,
		Generated:          true,
		FailureReason:      "ClientAccessDenied",
		AuthDeniedReason:   "Service",
		CallerPrincipal:    "arn:aws:sts::111122223333:assumed-role/Frontend/session",
		CallerX509: &identity.X509{SANURI: "spiffe://trellis.local/account/111122223333/role/Frontend",
			SubjectCN: "Frontend", IssuerOU: "Trellis"},
		AccessLogs: []string{logGroupARN, s3ARN, firehoseARN, stdoutARN},
	}
}

// wantFull is fullRecord as Lattice's JSON: every field, with its type.
var wantFull = map[string]any{
	"startTime":                  "2024-08-04T09:28:40Z",
	"serviceNetworkArn":          "arn:aws:vpc-lattice:us-east-1:111122223333:servicenetwork/sn-0e05d75deabe9f290",
	"serviceArn":                 "arn:aws:vpc-lattice:us-east-1:111122223333:service/svc-0cfe1f49ff3266204",
	"targetGroupArn":             "arn:aws:vpc-lattice:us-east-1:111122223333:targetgroup/tg-0277f384abfefe8aa",
	"listenerId":                 "listener-0123456789abcdef0",
	"listenerType":               "HTTPS",
	"sourceVpcArn":               "arn:aws:ec2:us-east-1:111122223333:vpc/vpc-04157e16d89eba97b",
	"sourceVpcId":                "vpc-04157e16d89eba97b",
	"destinationVpcId":           "vpc-05e207e48696b69b6",
	"sourceIpPort":               "10.0.183.56:57086",
	"targetIpPort":               "172.31.9.231:80",
	"requestMethod":              "GET",
	"requestPath":                "/orders?id=7",
	"protocol":                   "HTTP/1.1",
	"responseCode":               float64(403),
	"bytesReceived":              float64(135),
	"bytesSent":                  float64(1247),
	"duration":                   float64(23),
	"requestToTargetDuration":    float64(21),
	"responseFromTargetDuration": float64(1),
	"userAgent":                  "curl/8.5.0",
	"hostHeader":                 "orders-0cfe1f49ff3266204.7d67968.vpc-lattice-svcs.us-east-1.on.aws",
	"serverNameIndication":       "orders-0cfe1f49ff3266204.7d67968.vpc-lattice-svcs.us-east-1.on.aws",
	"sslCipher":                  "TLS_AES_128_GCM_SHA256",
	"tlsVersion":                 "TLSv1.3",
	"resolvedUser":               "arn:aws:sts::111122223333:assumed-role/Frontend/session",
	"authDeniedReason":           "Service",
	"failureReason":              "ClientAccessDenied",
	"callerPrincipal":            "arn:aws:sts::111122223333:assumed-role/Frontend/session",
	"callerPrincipalOrgID":       "-",
	"callerX509IssuerOU":         "Trellis",
	"callerX509SubjectCN":        "Frontend",
	"callerX509SANNameCN":        "-",
	"callerX509SANDNS":           "-",
	"callerX509SANURI":           "spiffe://trellis.local/account/111122223333/role/Frontend",
}

func newWriter(t *testing.T, cfg Config) *Writer {
	t.Helper()
	if cfg.VPCArn == "" {
		cfg.VPCArn, cfg.VPCID = "arn:aws:ec2:us-east-1:111122223333:vpc/vpc-04157e16d89eba97b", "vpc-04157e16d89eba97b"
	}
	if cfg.DestinationVPC == nil {
		cfg.DestinationVPC = func(tg string) string {
			if tg == "tg-0277f384abfefe8aa" {
				return "vpc-05e207e48696b69b6"
			}
			return ""
		}
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// readLines parses every line of a log as a JSON object.
func readLines(t *testing.T, data string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func readFile(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return readLines(t, string(data))
}

func TestEveryFieldInEveryDestination(t *testing.T) {
	dir := t.TempDir()
	out := &lockedBuffer{}
	w := newWriter(t, Config{LogDir: dir, Stdout: out})
	rec := fullRecord()
	w.Observe(rec)
	*rec = proxy.Record{} // the proxy reuses records once Observe returns
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for name, lines := range map[string][]map[string]any{
		"log group": readFile(t, filepath.Join(dir, "logs/aws/vpclattice/orders.log")),
		"s3":        readFile(t, filepath.Join(dir, "s3/lattice-logs/prod/vpclattice-access.log")),
		"firehose":  readFile(t, filepath.Join(dir, "firehose/lattice.log")),
		"stdout":    readLines(t, out.String()),
	} {
		if len(lines) != 1 {
			t.Errorf("%s: %d lines, want 1", name, len(lines))
			continue
		}
		if !reflect.DeepEqual(lines[0], wantFull) {
			for k, v := range wantFull {
				if got, ok := lines[0][k]; !ok || got != v {
					t.Errorf("%s: %s = %#v, want %#v", name, k, got, v)
				}
			}
			for k := range lines[0] {
				if _, ok := wantFull[k]; !ok {
					t.Errorf("%s: unexpected field %s", name, k)
				}
			}
		}
	}
}

func TestEmptyFieldsAndEscaping(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(t, Config{LogDir: dir, DestinationVPC: func(string) string { return "" }})
	// A TLS passthrough connection: no HTTP fields.
	w.Observe(&proxy.Record{Start: time.Unix(0, 0), ListenerProtocol: "TLS_PASSTHROUGH", SNI: "db.example.com",
		SourceAddr: "10.0.0.1:5000", BytesReceived: 10, AccessLogs: []string{firehoseARN}})
	// A hostile client: quotes, newlines, control and invalid bytes.
	w.Observe(&proxy.Record{Start: time.Unix(0, 0), Path: "/a\"b\\c\nd\re\tf\x01\u2028g\xffh", UserAgent: "日本語",
		AccessLogs: []string{firehoseARN}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readFile(t, filepath.Join(dir, "firehose/lattice.log"))
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	for k, v := range lines[0] {
		switch k {
		case "startTime":
			if v != "1970-01-01T00:00:00Z" {
				t.Errorf("startTime %v", v)
			}
		case "listenerType", "serverNameIndication", "sourceIpPort", "sourceVpcArn", "sourceVpcId":
			if v == "-" {
				t.Errorf("%s is empty", k)
			}
		case "bytesReceived":
			if v != float64(10) {
				t.Errorf("%s = %v", k, v)
			}
		case "responseCode", "bytesSent", "duration", "requestToTargetDuration", "responseFromTargetDuration":
			if v != float64(0) {
				t.Errorf("%s = %v, want 0", k, v)
			}
		default:
			if v != "-" {
				t.Errorf("%s = %#v, want \"-\"", k, v)
			}
		}
	}
	if got, want := lines[1]["requestPath"], "/a\"b\\c\nd\re\tf\x01\u2028g\uFFFDh"; got != want {
		t.Errorf("requestPath %q, want %q", got, want)
	}
	if got := lines[1]["userAgent"]; got != "日本語" {
		t.Errorf("userAgent %q", got)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\/", "\x00\x1f\x7f", "\xff\xfe", "\u2028\u2029", "日本", "\xe6\x97"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := appendString(nil, s)
		if bytes.ContainsAny(enc, "\n\r") || !utf8.Valid(enc) {
			t.Fatalf("%q encodes to %q", s, enc)
		}
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %q: %v", s, enc, err)
		}
		std, _ := json.Marshal(s) // encoding/json also replaces each invalid byte
		var want string
		_ = json.Unmarshal(std, &want)
		if got != want {
			t.Fatalf("%q round-trips to %q, want %q", s, got, want)
		}
	})
}

func TestFlushWithoutClose(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(t, Config{LogDir: dir})
	path := filepath.Join(dir, "logs/aws/vpclattice/orders.log")
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"old":"line"}`+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.Observe(fullRecord())
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if lines := readLines(t, string(data)); len(lines) == 4 {
			if lines[0]["old"] != "line" {
				t.Fatalf("existing content not kept: %v", lines[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records not on disk after 3 s without Close:\n%s", data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// blockingWriter blocks every Write until released.
type blockingWriter struct {
	release chan struct{}
	lockedBuffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	return b.lockedBuffer.Write(p)
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	reg := metrics.NewRegistry()
	out := &blockingWriter{release: make(chan struct{})}
	w := newWriter(t, Config{LogDir: t.TempDir(), Stdout: out, QueueSize: 4, Registry: reg})
	rec := fullRecord()
	rec.AccessLogs = []string{stdoutARN}
	const n = 200
	start := time.Now()
	for range n {
		w.Observe(rec)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Observe blocked: %v for %d records", d, n)
	}
	if w.Dropped() == 0 {
		t.Fatal("nothing dropped with a stuck writer and a queue of 4")
	}
	if metric := counter(t, reg, "trellis_accesslog_dropped_records_total"); metric != float64(w.Dropped()) {
		t.Errorf("metric %v, Dropped %d", metric, w.Dropped())
	}
	close(out.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if lines := readLines(t, out.String()); uint64(len(lines))+w.Dropped() != n {
		t.Errorf("%d written + %d dropped != %d observed", len(lines), w.Dropped(), n)
	}
}

func TestDestinationsShareAndFail(t *testing.T) {
	dir := t.TempDir()
	reg := metrics.NewRegistry()
	w := newWriter(t, Config{LogDir: dir, Registry: reg})
	rec := fullRecord()
	// The same log group name in two regions is one file; an SQS ARN is
	// not a destination.
	rec.AccessLogs = []string{logGroupARN, strings.Replace(logGroupARN, "us-east-1", "eu-west-1", 1),
		"arn:aws:sqs:us-east-1:111122223333:q"}
	w.Observe(rec)
	w.Observe(rec)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if lines := readFile(t, filepath.Join(dir, "logs/aws/vpclattice/orders.log")); len(lines) != 4 {
		t.Errorf("%d lines, want 4", len(lines))
	}
	if w.Errors() != 2 {
		t.Errorf("errors %d, want 2", w.Errors())
	}
	if got := counter(t, reg, "trellis_accesslog_errors_total"); got != 2 {
		t.Errorf("errors metric %v", got)
	}
	w.Observe(rec) // after Close: ignored
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// An unwritable directory loses records, counted, without panics.
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	w2 := newWriter(t, Config{LogDir: file})
	rec.AccessLogs = []string{firehoseARN}
	w2.Observe(rec)
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if w2.Errors() != 1 {
		t.Errorf("unwritable dir: %d errors, want 1", w2.Errors())
	}

	// No LogDir: only stdout works.
	out := &lockedBuffer{}
	w3 := newWriter(t, Config{Stdout: out})
	rec.AccessLogs = []string{firehoseARN, stdoutARN}
	w3.Observe(rec)
	_ = w3.Close()
	if w3.Errors() != 1 || len(readLines(t, out.String())) != 1 {
		t.Errorf("no LogDir: %d errors, stdout %q", w3.Errors(), out.String())
	}
}

// counter reads an unlabelled metric's value as /metrics shows it.
func counter(t *testing.T, reg *metrics.Registry, name string) float64 {
	t.Helper()
	v, ok := reg.Samples()[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	return v
}

func TestConcurrentObserveAndNoLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	dir := t.TempDir()
	w, err := New(Config{LogDir: dir, QueueSize: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rec := fullRecord()
			rec.AccessLogs = []string{logGroupARN, s3ARN}
			for i := range 200 {
				rec.BytesSent = int64(g*1000 + i)
				w.Observe(rec)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"logs/aws/vpclattice/orders.log", "s3/lattice-logs/prod/vpclattice-access.log"} {
		lines := readFile(t, filepath.Join(dir, p))
		var seen []int
		for _, l := range lines {
			seen = append(seen, int(l["bytesSent"].(float64)))
		}
		slices.Sort(seen)
		if len(slices.Compact(seen)) != 1600 || w.Dropped() != 0 {
			t.Errorf("%s: %d distinct records of 1600, %d dropped", p, len(seen), w.Dropped())
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), base)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func BenchmarkObserve(b *testing.B) {
	w, err := New(Config{LogDir: b.TempDir(), QueueSize: 1 << 16,
		VPCArn: "arn:aws:ec2:us-east-1:111122223333:vpc/vpc-04157e16d89eba97b", VPCID: "vpc-04157e16d89eba97b"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = w.Close() }()
	rec := fullRecord()
	rec.AccessLogs = []string{logGroupARN}
	w.Observe(rec) // open the file outside the loop
	b.ReportAllocs()
	for b.Loop() {
		w.Observe(rec)
	}
	b.ReportMetric(float64(w.Dropped()), "dropped")
}
