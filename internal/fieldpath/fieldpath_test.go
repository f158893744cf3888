package fieldpath

import (
	"cmp"
	"testing"
)

func TestCompare(t *testing.T) {
	ordered := []string{"", "Id", "Statement", "Statement[0]", "Statement[0].Action", "Statement[2]", "Statement[10]",
		"Statement[010].Effect", "Version", "services[1].clientAliases[9]", "services[1].clientAliases[10]"}
	for i := range ordered {
		for j := range ordered {
			if got, want := Compare(ordered[i], ordered[j]), cmp.Compare(i, j); got != want {
				t.Errorf("Compare(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}
