package accesslog

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// StdoutLogGroup is the CloudWatch Logs group name whose records go to the
// process's standard output (Config.Stdout) instead of a file: subscribe
// arn:aws:logs:<region>:<account>:log-group:/trellis/stdout. Namespaced so
// that no ordinary log group is diverted by accident.
const StdoutLogGroup = "/trellis/stdout"

// s3FileName is the file records for an S3 destination are appended to.
const s3FileName = "vpclattice-access.log"

// ErrDestination reports a destination ARN the writer cannot map.
var ErrDestination = errors.New("unsupported access-log destination")

// Destination maps a subscription's destination ARN to where its records
// go: the file under logDir, or stdout=true for the StdoutLogGroup.
//
//	arn:aws:logs:R:A:log-group:NAME[:*]     <logDir>/logs/NAME.log
//	arn:aws:s3:::BUCKET[/PREFIX]             <logDir>/s3/BUCKET[/PREFIX]/vpclattice-access.log
//	arn:aws:firehose:R:A:deliverystream/NAME <logDir>/firehose/NAME.log
//
// Names may contain "/" (a directory level each) and "."; each path
// segment keeps only [A-Za-z0-9._#-] (anything else becomes "_"), a
// segment of dots only becomes as many "_", and empty segments vanish, so
// the result is always inside logDir. Any partition (aws, aws-cn, ...) is
// accepted; region and account do not appear in the path, so the same log
// group name in two regions shares a file.
func Destination(logDir, arn string) (path string, stdout bool, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" {
		return "", false, fmt.Errorf("%w: %q is not an ARN", ErrDestination, arn)
	}
	service, resource := parts[2], parts[5]
	var rel []string
	switch service {
	case "logs":
		name, ok := strings.CutPrefix(resource, "log-group:")
		if !ok {
			return "", false, fmt.Errorf("%w: %q is not a log group", ErrDestination, arn)
		}
		name = strings.TrimSuffix(name, ":*")
		if name == StdoutLogGroup {
			return "", true, nil
		}
		segs := segments(name)
		if len(segs) == 0 {
			return "", false, fmt.Errorf("%w: %q has no log group name", ErrDestination, arn)
		}
		segs[len(segs)-1] += ".log"
		rel = append([]string{"logs"}, segs...)
	case "s3":
		segs := segments(resource)
		if len(segs) == 0 {
			return "", false, fmt.Errorf("%w: %q has no bucket", ErrDestination, arn)
		}
		rel = append(append([]string{"s3"}, segs...), s3FileName)
	case "firehose":
		name, ok := strings.CutPrefix(resource, "deliverystream/")
		segs := segments(name)
		if !ok || len(segs) == 0 {
			return "", false, fmt.Errorf("%w: %q is not a delivery stream", ErrDestination, arn)
		}
		segs[len(segs)-1] += ".log"
		rel = append([]string{"firehose"}, segs...)
	default:
		return "", false, fmt.Errorf("%w: service %q", ErrDestination, service)
	}
	path = filepath.Join(append([]string{logDir}, rel...)...)
	if !within(logDir, path) {
		// Unreachable by construction; kept as the last line of defence.
		return "", false, fmt.Errorf("%w: %q escapes the log directory", ErrDestination, arn)
	}
	return path, false, nil
}

// segments splits a name on "/" into safe, non-empty path segments.
func segments(name string) []string {
	var out []string
	for seg := range strings.SplitSeq(name, "/") {
		if seg == "" {
			continue
		}
		b := []byte(seg)
		dots := true
		for i, c := range b {
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '#'
			if !ok {
				b[i] = '_'
			}
			if b[i] != '.' {
				dots = false
			}
		}
		if dots { // ".", "..", "...": never a parent or the directory itself
			for i := range b {
				b[i] = '_'
			}
		}
		out = append(out, string(b))
	}
	return out
}

// within reports whether path lies strictly inside dir.
func within(dir, path string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
