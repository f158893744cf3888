package cli

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice/types"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Patterns of what differs between runs, replaced by stable placeholders
// of the same length so table columns stay aligned.
var (
	dnsRE     = regexp.MustCompile(`-[0-9a-f]{17}\.[0-9a-f]{7}\.vpc-lattice-svcs`)
	zoneRE    = regexp.MustCompile(`Z[0-9A-F]{7}TRELLIS`)
	idRE      = regexp.MustCompile(`\b(snsa|snva|sn|svc|listener|rule|tg|als|vpc)-[0-9a-z]{17}\b`)
	accountRE = regexp.MustCompile(`\b[0-9]{12}\b`)
	keyRE     = regexp.MustCompile(`\bAKIA[A-Z2-7]{16}\b`)
	timeRE    = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z`)
)

// mask replaces IDs, account numbers, access keys, timestamps and
// generated DNS labels with placeholders numbered by first appearance.
func mask(s string) string {
	number := func(re *regexp.Regexp, f func(m string, n int) string) {
		seen := map[string]string{}
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			if p, ok := seen[m]; ok {
				return p
			}
			p := f(m, len(seen)+1)
			seen[m] = p
			return p
		})
	}
	number(dnsRE, func(_ string, n int) string { return fmt.Sprintf("-%017d.0000000.vpc-lattice-svcs", n) })
	s = zoneRE.ReplaceAllString(s, "Z0000000TRELLIS")
	number(idRE, func(m string, n int) string { return m[:strings.Index(m, "-")] + fmt.Sprintf("-%017d", n) })
	number(accountRE, func(_ string, n int) string { return fmt.Sprintf("%012d", n) })
	number(keyRE, func(_ string, n int) string { return fmt.Sprintf("AKIA%016d", n) })
	s = timeRE.ReplaceAllStringFunc(s, func(m string) string {
		if strings.Contains(m, ".") {
			return "2000-01-01T00:00:00.000Z"
		}
		return "2000-01-01T00:00:00Z"
	})
	return s
}

// golden compares got (masked) with testdata/NAME.golden; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = mask(got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test -update rewrites it)\n--- got:\n%s--- want:\n%s", name, path, got, want)
	}
}

func TestMaskKeepsWidthAndNumbersStably(t *testing.T) {
	in := "svc-0123456789abcdef0 svc-0123456789abcdef0 sn-aaaaaaaaaaaaaaaaa 123456789012 2024-08-04T11:28:40.123Z"
	got := mask(in)
	want := "svc-00000000000000001 svc-00000000000000001 sn-00000000000000002 000000000001 2000-01-01T00:00:00.000Z"
	if got != want {
		t.Fatalf("mask:\n got %s\nwant %s", got, want)
	}
}

func TestRender(t *testing.T) {
	v := []object{{"id": "vpc-1", "cidrs": []any{"10.0.0.0/16"}}}
	var b bytes.Buffer
	if err := render(&b, "json", v); err != nil {
		t.Fatal(err)
	}
	if want := "[\n  {\n    \"cidrs\": [\n      \"10.0.0.0/16\"\n    ],\n    \"id\": \"vpc-1\"\n  }\n]\n"; b.String() != want {
		t.Errorf("json:\n%s", b.String())
	}
	b.Reset()
	if err := render(&b, "yaml", v); err != nil {
		t.Fatal(err)
	}
	if want := "- cidrs:\n  - 10.0.0.0/16\n  id: vpc-1\n"; b.String() != want {
		t.Errorf("yaml:\n%s", b.String())
	}
	err := render(&b, "xml", v)
	if err == nil || !strings.Contains(err.Error(), `unknown output format "xml"`) {
		t.Errorf("render xml: %v", err)
	}
}

func TestPrintTable(t *testing.T) {
	var b bytes.Buffer
	if err := printTable(&b, []string{"name", "dns name"}, [][]string{{"orders", ""}, {"a"}}); err != nil {
		t.Fatal(err)
	}
	want := "NAME     DNS NAME\norders   -\na        -\n"
	if b.String() != want {
		t.Errorf("table:\n%q\nwant\n%q", b.String(), want)
	}
}

func TestWireView(t *testing.T) {
	ts := time.Date(2024, 8, 4, 11, 28, 40, 123e6, time.UTC)
	rule := types.RuleUpdateSuccess{
		Id:       aws.String("rule-1"),
		Priority: aws.Int32(10),
		Action: &types.RuleActionMemberForward{Value: types.ForwardAction{TargetGroups: []types.WeightedTargetGroup{
			{TargetGroupIdentifier: aws.String("tg-1"), Weight: aws.Int32(90)}}}},
		Match: &types.RuleMatchMemberHttpMatch{Value: types.HttpMatch{
			PathMatch:     &types.PathMatch{Match: &types.PathMatchTypeMemberPrefix{Value: "/v2"}},
			HeaderMatches: []types.HeaderMatch{},
		}},
	}
	got := fmt.Sprint(wireView(rule))
	want := "map[action:map[forward:map[targetGroups:[map[targetGroupIdentifier:tg-1 weight:90]]]] id:rule-1 " +
		"match:map[httpMatch:map[headerMatches:[] pathMatch:map[match:map[prefix:/v2]]]] priority:10]"
	if got != want {
		t.Errorf("wireView:\n got %s\nwant %s", got, want)
	}
	if got := wireView(&ts); got != "2024-08-04T11:28:40.123Z" {
		t.Errorf("time: %v", got)
	}
	hc := types.HealthCheckConfig{Matcher: &types.MatcherMemberHttpCode{Value: "200"}}
	if got := fmt.Sprint(wireView(hc)); got != "map[matcher:map[httpCode:200]]" {
		t.Errorf("matcher: %s", got)
	}
}

func TestPrintKV(t *testing.T) {
	var b bytes.Buffer
	printKV(&b, map[string]any{"zeta": 1.0, "id": "x", "name": "n", "list": []any{map[string]any{"a": "b", "c": "d"}, "s"}, "empty": []any{}}, "")
	want := "name: n\nid: x\nempty: []\nlist:\n  - a: b\n    c: d\n  - s\nzeta: 1\n"
	if b.String() != want {
		t.Errorf("printKV:\n%s\nwant\n%s", b.String(), want)
	}
}
