package testnet

import "testing"

// TestFreeAddrDistinct asks for many addresses in a row: none repeats,
// though the kernel is free to offer a closed probe's port again.
func TestFreeAddrDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		a := FreeAddr(t)
		if seen[a] {
			t.Fatalf("FreeAddr returned %s twice", a)
		}
		seen[a] = true
	}
}
