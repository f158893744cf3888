package config

import (
	"fmt"
	"io"
	"os"
	"reflect"
)

// Parse strictly decodes data, validates it and applies every default.
// A document with problems yields a *ValidationError listing all of them
// (errors.Is(err, ErrInvalid) holds) and no Config.
func Parse(data []byte) (*Config, error) {
	var ps problems
	if len(data) > MaxDocumentBytes {
		ps.addf("", "document is larger than the limit of %d bytes", MaxDocumentBytes)
		return nil, ps.err()
	}
	root, err := readDocument(data)
	if err != nil {
		ps.addf("", "%s", err.Error())
		return nil, ps.err()
	}
	doc := &Document{}
	if root.kind != kindObject {
		ps.addf("", "document must be a JSON object, not %v", root.kind)
		return nil, ps.err()
	}
	b := binder{ps: &ps}
	b.object(&root, reflect.ValueOf(doc).Elem(), "")
	cfg := resolve(doc, &ps)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Load reads the document at path and parses it.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit so that Parse sees an oversized file
	// as such without the whole of it being read.
	data, err := io.ReadAll(io.LimitReader(f, MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	return cfg, nil
}
