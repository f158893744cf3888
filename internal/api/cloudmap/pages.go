package cloudmap

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/store"
)

// keyed is a list item with the store key it sorts and pages by.
type keyed[T any] struct {
	key  string
	item T
}

// paginate returns the page of items (sorted by key) after the one
// nextToken names, at most limit long, and the token of the next page.
// Tokens are bound to scope, so one listing's token is refused by another.
func paginate[T any](items []keyed[T], scope string, nextToken *string, limit int) ([]T, *string, error) {
	start := 0
	if nextToken != nil && *nextToken != "" {
		if len(*nextToken) > 4096 {
			return nil, nil, invalid("NextToken", "must be at most 4096 characters long")
		}
		after, err := wire.DecodeToken(scope, *nextToken)
		if err != nil {
			return nil, nil, invalid("NextToken", "is not a token returned by this operation")
		}
		for start < len(items) && items[start].key <= after {
			start++
		}
	}
	end := min(start+limit, len(items))
	out := make([]T, 0, end-start)
	for _, it := range items[start:end] {
		out = append(out, it.item)
	}
	var next *string
	if end < len(items) {
		t := wire.EncodeToken(scope, items[end-1].key)
		next = &t
	}
	return out, next, nil
}

func matchAll[T any](preds []func(T) bool, v T) bool {
	for _, p := range preds {
		if !p(v) {
			return false
		}
	}
	return true
}

func contains(list []string, v string) bool { return slices.Contains(list, v) }

func first(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[0]
}

func itoa(i int) string { return strconv.Itoa(i) }

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// sortKeyed sorts items by key.
func sortKeyed[T any](items []keyed[T]) {
	slices.SortFunc(items, func(a, b keyed[T]) int { return strings.Compare(a.key, b.key) })
}
