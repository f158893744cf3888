package testnet

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// DesyncCase is one vector of the HTTP/1.1 request-smuggling suite of
// github.com/aws/http-desync-guardian: a request and the tier it belongs
// to (Severe, Ambiguous, Compliant...).
type DesyncCase struct {
	Name    string     `json:"name"`
	URI     FlexString `json:"uri"`
	Method  FlexString `json:"method"`
	Version FlexString `json:"version"`
	Headers []struct {
		Name  FlexString `json:"name"`
		Value FlexString `json:"value"`
	} `json:"headers"`
	Expected struct {
		Tier   string `json:"tier"`
		Reason string `json:"reason"`
	} `json:"expected"`
	// File is the vector file the case comes from.
	File string `json:"-"`
}

// FlexString takes a YAML scalar of any type (`value: 1000` is a number).
type FlexString string

// UnmarshalJSON keeps a string as it is and any other scalar as its text.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil:
		*s = ""
	case string:
		*s = FlexString(v)
	default:
		*s = FlexString(strings.TrimSpace(string(b)))
	}
	return nil
}

// LoadDesync reads every vector file of dir, or skips the test when there
// are none (the suite is kept beside the repository, not in it).
func LoadDesync(t testing.TB, dir string) []DesyncCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Skipf("desync vectors not found in %s (expected ../shared/vectors/http1-desync beside the repository)", dir)
	}
	var all []DesyncCase
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cs []DesyncCase
		if err := yaml.Unmarshal(data, &cs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for i := range cs {
			cs[i].File = filepath.Base(f)
		}
		all = append(all, cs...)
	}
	return all
}

// Raw renders the case as bytes on the wire. A Host header for the
// test service is added first when the case has none, so that an accepted
// request would really reach the target; a body matching the framing
// headers (an empty chunked body, or Content-Length bytes) follows, so that
// a request a proxy accepts completes.
func (c *DesyncCase) Raw() []byte {
	var b strings.Builder
	b.WriteString(string(c.Method) + " " + string(c.URI))
	if c.Version != "" {
		b.WriteString(" " + string(c.Version))
	}
	b.WriteString("\r\n")
	hasHost := false
	for _, h := range c.Headers {
		if strings.EqualFold(strings.TrimSpace(string(h.Name)), "host") {
			hasHost = true
		}
	}
	if !hasHost {
		b.WriteString("Host: localhost\r\n")
	}
	body := ""
	for _, h := range c.Headers {
		b.WriteString(string(h.Name) + ": " + string(h.Value) + "\r\n")
		name, value := string(h.Name), strings.TrimSpace(string(h.Value))
		switch {
		case strings.EqualFold(name, "transfer-encoding") && strings.Contains(strings.ToLower(value), "chunked"):
			body = "0\r\n\r\n"
		case strings.EqualFold(name, "content-length") && body == "":
			if n, err := strconv.Atoi(value); err == nil && n >= 0 && n <= 8<<20 {
				body = strings.Repeat("x", n)
			}
		}
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return []byte(b.String())
}
