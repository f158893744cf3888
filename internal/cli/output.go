package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"sigs.k8s.io/yaml"
)

// render writes v as indented JSON or as YAML.
func render(w io.Writer, format string, v any) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding json: %w", err)
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	return fmt.Errorf("unknown output format %q (want table, json or yaml)", format)
}

// checkFormat fails early, before any API call, on an unknown -o.
func checkFormat(format string) error {
	switch format {
	case "table", "json", "yaml":
		return nil
	}
	return fmt.Errorf("unknown output format %q (want table, json or yaml)", format)
}

// printTable writes upper-case headers and one row per item, aligned;
// empty cells show "-".
func printTable(w io.Writer, headers []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	up := make([]string, len(headers))
	for i, h := range headers {
		up[i] = strings.ToUpper(h)
	}
	fmt.Fprintln(tw, strings.Join(up, "\t"))
	for _, r := range rows {
		cells := make([]string, len(headers))
		for i := range cells {
			cells[i] = "-"
			if i < len(r) && r[i] != "" {
				cells[i] = r[i]
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// object is an API answer in its wire shape: the JSON member names the
// API uses (id, name, dnsEntry.domainName, ...).
type object = map[string]any

// wireView converts an SDK value (output struct, summary, union) into its
// wire shape: lower-camel member names, unions as {"member": value},
// timestamps as RFC 3339 strings, unset members left out.
func wireView(v any) any { return toWire(reflect.ValueOf(v)) }

// wireObject is wireView for a struct, as an object.
func wireObject(v any) object {
	if m, ok := wireView(v).(map[string]any); ok {
		return m
	}
	return object{}
}

var timeType = reflect.TypeFor[time.Time]()

func toWire(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return toWire(v.Elem())
	case reflect.Struct:
		return structToWire(v)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toWire(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = toWire(it.Value())
		}
		return out
	case reflect.String:
		if v.String() == "" {
			return nil
		}
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	return nil
}

func structToWire(v reflect.Value) any {
	t := v.Type()
	if t == timeType {
		return v.Interface().(time.Time).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	// A union member (RuleActionMemberForward{Value: ...}) is {"forward": ...}.
	if i := strings.LastIndex(t.Name(), "Member"); i > 0 && i+len("Member") < len(t.Name()) {
		if f := v.FieldByName("Value"); f.IsValid() {
			return map[string]any{lowerFirst(t.Name()[i+len("Member"):]): toWire(f)}
		}
	}
	out := map[string]any{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Name == "ResultMetadata" {
			continue
		}
		if w := toWire(v.Field(i)); w != nil {
			out[lowerFirst(f.Name)] = w
		}
	}
	return out
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

// field walks an object along path and returns the value there ("" if absent).
func field(m object, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	switch v := cur.(type) {
	case nil:
		return ""
	case string:
		return v
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = fmt.Sprint(x)
		}
		return strings.Join(parts, ",")
	case float64:
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprint(cur)
}

// keyOrder puts identifying members first in key: value output.
var keyOrder = map[string]int{"name": 1, "id": 2, "arn": 3, "status": 4, "type": 5}

// printKV writes v as an indented key: value listing (YAML-like, with
// identifying keys first) for humans.
func printKV(w io.Writer, v any, indent string) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			oi, oj := keyOrder[keys[i]], keyOrder[keys[j]]
			if oi == 0 {
				oi = 100
			}
			if oj == 0 {
				oj = 100
			}
			if oi != oj {
				return oi < oj
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys {
			printKVEntry(w, indent, k+":", x[k])
		}
	case []any:
		for _, e := range x {
			printKVEntry(w, indent, "-", e)
		}
	default:
		fmt.Fprintf(w, "%s%s\n", indent, scalar(v))
	}
}

func printKVEntry(w io.Writer, indent, label string, v any) {
	switch x := v.(type) {
	case map[string]any:
		if label == "-" && len(x) > 0 {
			// A mapping in a list starts on the dash line, as in YAML.
			var b strings.Builder
			printKV(&b, x, "")
			for i, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
				prefix := indent + "  "
				if i == 0 {
					prefix = indent + "- "
				}
				fmt.Fprintln(w, prefix+l)
			}
			return
		}
		if len(x) == 0 {
			fmt.Fprintf(w, "%s%s {}\n", indent, label)
			return
		}
		fmt.Fprintf(w, "%s%s\n", indent, label)
		printKV(w, x, indent+"  ")
	case []any:
		if len(x) == 0 {
			fmt.Fprintf(w, "%s%s []\n", indent, label)
			return
		}
		fmt.Fprintf(w, "%s%s\n", indent, label)
		printKV(w, x, indent+"  ")
	default:
		fmt.Fprintf(w, "%s%s %s\n", indent, label, scalar(v))
	}
}

func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return `""`
		}
		return x
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprint(int64(x))
		}
	}
	return fmt.Sprint(v)
}
