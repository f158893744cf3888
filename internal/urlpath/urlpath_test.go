package urlpath

import (
	"slices"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"", "/", false},
		{"/", "/", false},
		{"*", "*", false},
		{"/a/b", "/a/b", false},
		{"/a/b/", "/a/b/", false},
		{"//a///b//", "/a/b/", false},
		{"/a/./b", "/a/b", false},
		{"/a/.", "/a/", false},
		{"/a/..", "/", false},
		{"/a/b/..", "/a/", false},
		{"/a/b/../c", "/a/c", false},
		{"/../../a", "/a", false},
		{"/..", "/", false},
		{"/.", "/", false},
		{"/a/.../b", "/a/.../b", false},
		{"/a/..b/c", "/a/..b/c", false},
		{"/a/%2e%2E/b", "/b", false},
		{"/a/%2E/b", "/a/b", false},
		{"/%7Euser", "/~user", false},
		{"/%41%62%2d%5f", "/Ab-_", false},
		{"/a%2fb", "/a%2Fb", false},
		{"/a%2Fb/../c", "/c", false},
		{"/a/%2F/../c", "/a/c", false},
		{"/%25", "/%25", false},
		{"/%252e", "/%252e", false},
		{"/%e2%82%ac", "/%E2%82%AC", false},
		{"/a..;/b", "/a..;/b", false},
		{"/a\\..\\b", "/a\\..\\b", false},
		{"/%", "", true},
		{"/%4", "", true},
		{"/%zz", "", true},
		{"/a%2", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("Normalize(%q) error = %v, want error %v", tt.in, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNormalizePathNoAllocWhenNormal(t *testing.T) {
	p := "/api/v1/users/%2F/x"
	if n := testing.AllocsPerRun(100, func() { _, _ = Normalize(p) }); n != 0 {
		t.Errorf("Normalize of a normal path allocates %v times", n)
	}
}

func TestNormalizePattern(t *testing.T) {
	for in, want := range map[string]string{
		"/api/":      "/api/",
		"/%7euser":   "/~user",
		"/a%2fb":     "/a%2Fb",
		"/a/../b":    "/a/../b",
		"/bad%zz":    "/bad%zz",
		"/trail%2":   "/trail%2",
		"/%E2%82%ac": "/%E2%82%AC",
	} {
		if got := NormalizePattern(in); got != want {
			t.Errorf("NormalizePattern(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzNormalizePath checks that normalisation never panics, is idempotent
// and yields a path without empty or dot segments.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "//x/./y/", "/%2e%2E/%2f", "/%7E/..", "/a/b/c/../../..", "/%", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := Normalize(p)
		if err != nil {
			return
		}
		if p == "" || p[0] != '/' {
			if p != "" && got != p {
				t.Fatalf("non-origin path changed: %q → %q", p, got)
			}
			return
		}
		again, err := Normalize(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q → %q → %q (%v)", p, got, again, err)
		}
		if !IsNormal(got) {
			t.Fatalf("output %q of %q is not normal", got, p)
		}
		if got[0] != '/' || strings.Contains(got, "//") {
			t.Fatalf("bad output %q of %q", got, p)
		}
		for _, seg := range strings.Split(got, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("dot segment left in %q (from %q)", got, p)
			}
		}
	})
}

func TestSlashDecoded(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/a/b", "/a/b", false},
		{"/admin%2Fsecret", "/admin/secret", true},
		{"/public%2F..%2Fadmin", "/admin", true},
		{"/a%5Cb", "/a/b", true},
		{`/public\..\admin`, "/admin", true},
		{"/a%2F%2Fb", "/a/b", true},
		{"/a%252Fb", "/a%252Fb", false}, // an encoded '%' is not a slash
	}
	for _, tt := range tests {
		got, ok := SlashDecoded(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("SlashDecoded(%q) = %q, %t; want %q, %t", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestReadings(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"/a/b", nil},
		{"/admin%2Fx", []string{"/admin/x"}},
		{"/public/..;/admin", []string{"/admin"}},
		{"/public;jsessionid=1/x", []string{"/public/x"}},
		{"/p/..;/a%2Fb", []string{"/p/..;/a/b", "/a%2Fb", "/a/b"}},
	}
	for _, tt := range tests {
		if got := Readings(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Readings(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
