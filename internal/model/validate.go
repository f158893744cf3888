package model

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one invalid field: Name is the wire member path
// (e.g. "config.healthCheck.path"), Message says what is wrong.
type FieldError struct {
	Name    string `json:"name"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of one request.
type ValidationError struct {
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Name + ": " + f.Message
	}
	return "validation failed: " + strings.Join(msgs, "; ")
}

// Checker collects field errors; the zero value is ready to use.
type Checker struct {
	fields []FieldError
}

// Addf records a problem with field name.
func (c *Checker) Addf(name, format string, args ...any) {
	c.fields = append(c.fields, FieldError{Name: name, Message: fmt.Sprintf(format, args...)})
}

// Err returns a *ValidationError with every problem, or nil.
func (c *Checker) Err() error {
	if len(c.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: c.fields}
}

// OK reports whether nothing was recorded.
func (c *Checker) OK() bool { return len(c.fields) == 0 }

// ResourceName checks a Lattice resource name: min–max characters of
// [a-z0-9-], not starting or ending with '-', no "--", and not starting
// with the resource's ID prefix (reserved so names never look like IDs).
func (c *Checker) ResourceName(field, v string, minLen, maxLen int, reserved string) {
	switch {
	case len(v) < minLen || len(v) > maxLen:
		c.Addf(field, "must be %d to %d characters long, got %d", minLen, maxLen, len(v))
		return
	case v != "" && (v[0] == '-' || v[len(v)-1] == '-'):
		c.Addf(field, "must not start or end with a hyphen")
		return
	case strings.Contains(v, "--"):
		c.Addf(field, "must not contain two consecutive hyphens")
		return
	case reserved != "" && strings.HasPrefix(v, reserved+"-"):
		c.Addf(field, "must not start with the reserved prefix %q", reserved+"-")
		return
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
			c.Addf(field, "may contain only lowercase letters, digits and hyphens")
			return
		}
	}
}

// Enum checks that v is one of allowed.
func (c *Checker) Enum(field, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	c.Addf(field, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
}

// Range checks lo <= v <= hi.
func (c *Checker) Range(field string, v, lo, hi int64) {
	if v < lo || v > hi {
		c.Addf(field, "must be between %d and %d, got %d", lo, hi, v)
	}
}

// Length checks the length of a string in characters (bytes for ASCII).
func (c *Checker) Length(field, v string, lo, hi int) {
	if n := len([]rune(v)); n < lo || n > hi {
		c.Addf(field, "must be %d to %d characters long, got %d", lo, hi, n)
	}
}

// ClientToken checks an idempotency token: 1–64 printable ASCII characters.
func (c *Checker) ClientToken(field string, v *string) {
	if v == nil {
		return
	}
	if len(*v) < 1 || len(*v) > 64 {
		c.Addf(field, "must be 1 to 64 characters long")
		return
	}
	for i := 0; i < len(*v); i++ {
		if (*v)[i] < '!' || (*v)[i] > '~' {
			c.Addf(field, "must contain only printable ASCII characters without spaces")
			return
		}
	}
}

// MaxTags is the most tags one resource or one request may carry.
const MaxTags = 50

// Tags checks a tag map: at most MaxTags, keys 1–128 characters not
// starting with "aws:", values 0–256 characters.
func (c *Checker) Tags(field string, tags map[string]string) {
	if len(tags) > MaxTags {
		c.Addf(field, "at most %d tags are allowed, got %d", MaxTags, len(tags))
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if n := len([]rune(k)); n < 1 || n > 128 {
			c.Addf(field+"."+k, "tag key must be 1 to 128 characters long")
		} else if strings.HasPrefix(strings.ToLower(k), "aws:") {
			c.Addf(field+"."+k, "tag keys starting with \"aws:\" are reserved")
		}
		if n := len([]rune(tags[k])); n > 256 {
			c.Addf(field+"."+k, "tag value must be at most 256 characters long")
		}
	}
}
