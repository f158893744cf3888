package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// Strict decoding. encoding/json stops at the first unknown member and
// says nothing about where it was, so the document is first read into an
// ordered tree of nodes and then bound onto the raw shapes by reflection
// over their json tags. Every unknown member, duplicate member and wrong
// JSON type becomes a problem with its path, and binding carries on.
//
// Rules beyond plain JSON:
//   - member names match exactly (encoding/json would accept any case);
//   - a member whose value is null counts as absent; null elsewhere (as
//     an array element or map value) is a type error;
//   - integers are integer literals: 8080 is one, 8080.0 and 8e3 are not.

// maxDepth bounds nesting. The deepest valid document is seven levels
// deep (serviceConnectConfiguration.services[].clientAliases[].
// testTrafficRules.header.value), so anything far deeper is noise, and
// the bound keeps a hostile document from costing deep recursion.
const maxDepth = 32

type nodeKind uint8

const (
	kindNull nodeKind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k nodeKind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindArray:
		return "an array"
	default:
		return "an object"
	}
}

// node is one JSON value. Objects keep their members in document order,
// duplicates included.
type node struct {
	kind    nodeKind
	boolean bool
	text    string // a string's value or a number's literal
	elems   []node
	members []member
}

type member struct {
	key string
	val node
}

// readDocument tokenises data into a tree. A syntax error is returned as
// a message naming the line and column.
func readDocument(data []byte) (node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root, err := readNode(dec, 0)
	if err != nil {
		return node{}, syntaxError(data, dec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected data after the top-level value")
		}
		return node{}, syntaxError(data, dec, err)
	}
	return root, nil
}

func readNode(dec *json.Decoder, depth int) (node, error) {
	tok, err := dec.Token()
	if err != nil {
		return node{}, err
	}
	switch t := tok.(type) {
	case nil:
		return node{kind: kindNull}, nil
	case bool:
		return node{kind: kindBool, boolean: t}, nil
	case json.Number:
		return node{kind: kindNumber, text: string(t)}, nil
	case string:
		return node{kind: kindString, text: t}, nil
	case json.Delim:
		if depth >= maxDepth {
			return node{}, fmt.Errorf("value nested more than %d levels deep", maxDepth)
		}
		if t == '[' {
			n := node{kind: kindArray}
			for dec.More() {
				e, err := readNode(dec, depth+1)
				if err != nil {
					return node{}, err
				}
				n.elems = append(n.elems, e)
			}
			_, err := dec.Token() // ']'
			return n, err
		}
		n := node{kind: kindObject}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return node{}, err
			}
			key, _ := kt.(string) // the decoder only yields strings here
			v, err := readNode(dec, depth+1)
			if err != nil {
				return node{}, err
			}
			n.members = append(n.members, member{key: key, val: v})
		}
		_, err := dec.Token() // '}'
		return n, err
	}
	return node{}, fmt.Errorf("unexpected token %v", tok)
}

// syntaxError renders err with a line and column.
func syntaxError(data []byte, dec *json.Decoder, err error) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("document is empty")
	}
	off := dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		msg = "unexpected end of document"
		off = int64(len(data))
	}
	off = min(max(off, 0), int64(len(data)))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("invalid JSON at line %d, column %d: %s", line, col, msg)
}

// binder binds a node tree onto the raw shapes.
type binder struct {
	ps *problems
}

// bind stores n in v (settable) and reports whether n had the right
// JSON type for v. Problems inside a well-typed object or array do not
// make bind return false.
func (b *binder) bind(n *node, v reflect.Value, at string) bool {
	switch v.Kind() {
	case reflect.Pointer:
		if n.kind == kindNull {
			return true // absent
		}
		elem := reflect.New(v.Type().Elem())
		if !b.bind(n, elem.Elem(), at) {
			return false // leave the member unset
		}
		v.Set(elem)
		return true
	case reflect.Struct:
		if !b.want(n, kindObject, at) {
			return false
		}
		b.object(n, v, at)
		return true
	case reflect.Slice:
		if n.kind == kindNull {
			return true
		}
		if !b.want(n, kindArray, at) {
			return false
		}
		s := reflect.MakeSlice(v.Type(), len(n.elems), len(n.elems))
		for i := range n.elems {
			b.bind(&n.elems[i], s.Index(i), index(at, i))
		}
		v.Set(s)
		return true
	case reflect.Map: // map[string]string only
		if n.kind == kindNull {
			return true
		}
		if !b.want(n, kindObject, at) {
			return false
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.members))
		for i := range n.members {
			mem := &n.members[i]
			p := field(at, mem.key)
			if m.MapIndex(reflect.ValueOf(mem.key)).IsValid() {
				b.ps.addf(p, "duplicate member %q", mem.key)
				continue
			}
			val := reflect.New(v.Type().Elem()).Elem()
			if b.bind(&mem.val, val, p) {
				m.SetMapIndex(reflect.ValueOf(mem.key), val)
			}
		}
		v.Set(m)
		return true
	case reflect.String:
		if !b.want(n, kindString, at) {
			return false
		}
		v.SetString(n.text)
		return true
	case reflect.Bool:
		if !b.want(n, kindBool, at) {
			return false
		}
		v.SetBool(n.boolean)
		return true
	case reflect.Int:
		if !b.want(n, kindNumber, at) {
			return false
		}
		i, err := strconv.ParseInt(n.text, 10, 64)
		if err != nil || v.OverflowInt(i) {
			if strings.ContainsAny(n.text, ".eE") {
				b.ps.typef(at, "must be an integer, not %s", n.text)
			} else {
				b.ps.typef(at, "integer %s is out of range", n.text)
			}
			return false
		}
		v.SetInt(i)
		return true
	}
	// Only reachable if a raw shape gains a field of an unsupported kind.
	panic(fmt.Sprintf("config: cannot decode into %v", v.Type()))
}

// want reports whether n is of kind k, recording a problem if not.
func (b *binder) want(n *node, k nodeKind, at string) bool {
	if n.kind == k {
		return true
	}
	what := k.String()
	if k == kindBool {
		what = "true or false"
	}
	if k == kindNumber {
		what = "an integer"
	}
	b.ps.typef(at, "must be %s, not %v", what, n.kind)
	return false
}

// object binds the members of n onto the fields of struct v.
func (b *binder) object(n *node, v reflect.Value, at string) {
	t := v.Type()
	seen := make(map[string]bool, len(n.members))
	for i := range n.members {
		mem := &n.members[i]
		p := field(at, mem.key)
		if seen[mem.key] {
			b.ps.addf(p, "duplicate member %q", mem.key)
			continue
		}
		seen[mem.key] = true
		fi, ok := fieldIndex(t, mem.key)
		if !ok {
			if near := nearName(t, mem.key); near != "" {
				b.ps.addf(p, "unknown member %q (did you mean %q?)", mem.key, near)
			} else {
				b.ps.addf(p, "unknown member %q", mem.key)
			}
			continue
		}
		b.bind(&mem.val, v.Field(fi), p)
	}
}

// jsonName returns the member name of struct field f, or "".
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	return name
}

// fieldIndex finds the field of t whose member name is exactly name.
func fieldIndex(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		if n := jsonName(t.Field(i)); n != "" && n == name {
			return i, true
		}
	}
	return 0, false
}

// nearName returns the member name of t that equals name but for case,
// the usual slip when copying between ECS (camelCase) and Cloud Map
// (PascalCase) documents.
func nearName(t reflect.Type, name string) string {
	for i := range t.NumField() {
		if n := jsonName(t.Field(i)); n != "" && strings.EqualFold(n, name) {
			return n
		}
	}
	return ""
}
