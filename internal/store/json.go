package store

import (
	"encoding/json"
	"errors"
	"fmt"
)

// GetJSON reads key in tx and decodes its JSON value. A missing key is
// (nil, false, nil), not an error.
func GetJSON[T any](tx *Tx, key string) (*T, bool, error) {
	kv, err := tx.Get(key)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v := new(T)
	if err := json.Unmarshal(kv.Value, v); err != nil {
		return nil, false, fmt.Errorf("decoding %s: %w", key, err)
	}
	return v, true, nil
}

// PutJSON encodes v as JSON and writes it at key in tx.
func PutJSON(tx *Tx, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	tx.Put(key, b)
	return nil
}

// ListJSON decodes every value under prefix, in key order.
func ListJSON[T any](tx *Tx, prefix string) ([]*T, error) {
	kvs, err := tx.List(prefix)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(kvs))
	for _, kv := range kvs {
		v := new(T)
		if err := json.Unmarshal(kv.Value, v); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", kv.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}
