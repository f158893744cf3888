package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds JSON nesting. The deepest valid policy element,
// Statement[i].Condition.Operator.Key[j], sits at depth 6; the limit keeps
// hostile documents from driving deep recursion.
const maxDepth = 16

type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

func (k jsonKind) String() string {
	switch k {
	case jsonNull:
		return "null"
	case jsonBool:
		return "a boolean"
	case jsonNumber:
		return "a number"
	case jsonString:
		return "a string"
	case jsonArray:
		return "an array"
	}
	return "an object"
}

// node is one decoded JSON value. Objects keep their members in document
// order; of duplicate members only the first is kept (and the duplicate is
// reported).
type node struct {
	kind    jsonKind
	text    string // string value, number as written, or "true"/"false"
	elems   []node
	members []member
}

type member struct {
	key string
	val node
}

// get returns the member named key, or nil.
func (n *node) get(key string) *node {
	for i := range n.members {
		if n.members[i].key == key {
			return &n.members[i].val
		}
	}
	return nil
}

func (n *node) isScalar() bool {
	return n.kind == jsonString || n.kind == jsonNumber || n.kind == jsonBool
}

// decoder builds a node tree from a json.Decoder token stream.
type decoder struct {
	dec *json.Decoder
	ps  *problems
}

// decodeJSON decodes doc into a tree. Syntax errors and nesting beyond
// maxDepth are reported and make it return false; duplicate keys and
// trailing data are reported but the tree is still returned.
func decodeJSON(doc []byte, ps *problems) (node, bool) {
	if !utf8.Valid(doc) {
		ps.add(nil, "policy is not valid UTF-8")
		return node{}, false
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	d := decoder{dec: dec, ps: ps}
	tok, err := dec.Token()
	if err == io.EOF {
		ps.add(nil, "policy document is empty")
		return node{}, false
	}
	if err != nil {
		d.syntax(nil, err)
		return node{}, false
	}
	root, ok := d.value(tok, nil, 1)
	if !ok {
		return node{}, false
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		ps.addf(nil, "unexpected data after the policy document, which ends at offset %d", end)
	}
	return root, true
}

func (d *decoder) syntax(at *path, err error) {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		d.ps.addf(at, "invalid JSON at offset %d: %v", se.Offset, se)
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		d.ps.add(at, "invalid JSON: unexpected end of document")
	default:
		d.ps.addf(at, "invalid JSON: %v", err)
	}
}

func (d *decoder) value(tok json.Token, at *path, depth int) (node, bool) {
	switch t := tok.(type) {
	case string:
		return node{kind: jsonString, text: t}, true
	case json.Number:
		return node{kind: jsonNumber, text: string(t)}, true
	case bool:
		if t {
			return node{kind: jsonBool, text: "true"}, true
		}
		return node{kind: jsonBool, text: "false"}, true
	case nil:
		return node{kind: jsonNull}, true
	case json.Delim:
		if depth > maxDepth {
			d.ps.addf(at, "JSON is nested more than %d levels deep", maxDepth)
			return node{}, false
		}
		if t == '{' {
			return d.object(at, depth)
		}
		if t == '[' {
			return d.array(at, depth)
		}
	}
	d.ps.addf(at, "invalid JSON: unexpected token %v", tok)
	return node{}, false
}

func (d *decoder) object(at *path, depth int) (node, bool) {
	n := node{kind: jsonObject}
	var seen map[string]struct{} // used once an object grows large
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			d.syntax(at, err)
			return node{}, false
		}
		key, _ := tok.(string) // the decoder only yields string keys here
		child := at.field(key)
		tok, err = d.dec.Token()
		if err != nil {
			d.syntax(&child, err)
			return node{}, false
		}
		v, ok := d.value(tok, &child, depth+1)
		if !ok {
			return node{}, false
		}
		dup := false
		if seen != nil {
			_, dup = seen[key]
		} else {
			dup = n.get(key) != nil
		}
		if dup {
			d.ps.add(&child, "duplicate key")
			continue
		}
		n.members = append(n.members, member{key: key, val: v})
		if seen == nil && len(n.members) > 16 {
			seen = make(map[string]struct{}, 2*len(n.members))
			for _, m := range n.members {
				seen[m.key] = struct{}{}
			}
		} else if seen != nil {
			seen[key] = struct{}{}
		}
	}
	if _, err := d.dec.Token(); err != nil { // the closing '}'
		d.syntax(at, err)
		return node{}, false
	}
	return n, true
}

func (d *decoder) array(at *path, depth int) (node, bool) {
	n := node{kind: jsonArray}
	for d.dec.More() {
		child := at.elem(len(n.elems))
		tok, err := d.dec.Token()
		if err != nil {
			d.syntax(&child, err)
			return node{}, false
		}
		v, ok := d.value(tok, &child, depth+1)
		if !ok {
			return node{}, false
		}
		n.elems = append(n.elems, v)
	}
	if _, err := d.dec.Token(); err != nil { // the closing ']'
		d.syntax(at, err)
		return node{}, false
	}
	return n, true
}

// Canonical returns the compact JSON form of doc for comparing documents:
// no insignificant whitespace, object members sorted by name (byte order),
// strings re-escaped minimally, numbers as written, array order kept.
// It applies the same strict decoding as Parse (valid UTF-8, no duplicate
// keys, no trailing data, bounded nesting) and returns a *ValidationError
// otherwise, but it does not check the policy grammar. Two documents with
// the same canonical form parse to equal policies.
func Canonical(doc []byte) (string, error) {
	var ps problems
	root, ok := decodeJSON(doc, &ps)
	if !ok || len(ps.list) > 0 {
		return "", ps.err()
	}
	buf := make([]byte, 0, len(doc))
	buf = appendCanonical(buf, &root)
	return string(buf), nil
}

func appendCanonical(buf []byte, n *node) []byte {
	switch n.kind {
	case jsonNull:
		return append(buf, "null"...)
	case jsonBool, jsonNumber:
		return append(buf, n.text...)
	case jsonString:
		return appendString(buf, n.text)
	case jsonArray:
		buf = append(buf, '[')
		for i := range n.elems {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendCanonical(buf, &n.elems[i])
		}
		return append(buf, ']')
	}
	order := make([]int, len(n.members))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(n.members[a].key, n.members[b].key) })
	buf = append(buf, '{')
	for i, m := range order {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendString(buf, n.members[m].key)
		buf = append(buf, ':')
		buf = appendCanonical(buf, &n.members[m].val)
	}
	return append(buf, '}')
}

// appendString appends s as a JSON string, escaping only what JSON
// requires: quotes, backslashes and control characters.
func appendString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		buf = append(buf, s[start:i]...)
		switch c {
		case '"', '\\':
			buf = append(buf, '\\', c)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}
