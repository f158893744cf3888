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

func TestProblemString(t *testing.T) {
	if got := (Problem{Path: "Statement[0].Effect", Message: "must be Allow or Deny"}).String(); got != "Statement[0].Effect: must be Allow or Deny" {
		t.Errorf("String() = %q", got)
	}
	if got := (Problem{Message: "policy document is empty"}).String(); got != "policy document is empty" {
		t.Errorf("String() without a path = %q", got)
	}
}
