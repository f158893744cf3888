package cli

import "strings"

// targetLine is the line of a 'get targets' table that shows target id.
func targetLine(table, id string) string {
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, id+" ") {
			return l
		}
	}
	return ""
}
