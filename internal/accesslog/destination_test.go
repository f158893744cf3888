package accesslog

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestDestination(t *testing.T) {
	const dir = "/var/log/trellis"
	for _, tc := range []struct {
		arn    string
		want   string // relative to dir; "" with stdout or err
		stdout bool
		err    bool
	}{
		{arn: "arn:aws:logs:us-east-1:111122223333:log-group:my-service", want: "logs/my-service.log"},
		{arn: "arn:aws:logs:us-east-1:111122223333:log-group:/aws/vpclattice/my.service:*", want: "logs/aws/vpclattice/my.service.log"},
		{arn: "arn:aws-cn:logs:cn-north-1:111122223333:log-group:a#b_c-d", want: "logs/a#b_c-d.log"},
		{arn: "arn:aws:logs:us-east-1:111122223333:log-group:/trellis/stdout", stdout: true},
		{arn: "arn:aws:logs:us-east-1:111122223333:log-group:/trellis/stdout:*", stdout: true},
		{arn: "arn:aws:logs:us-east-1:111122223333:log-group:stdout", want: "logs/stdout.log"},
		{arn: "arn:aws:logs:us-east-1:111122223333:log-group:../../etc/passwd", want: "logs/__/__/etc/passwd.log"},
		{arn: "arn:aws:logs:us-east-1:111122223333:log-group:/a/./b//c/...", want: "logs/a/_/b/c/___.log"},
		{arn: "arn:aws:logs:us-east-1:111122223333:log-group:..", want: "logs/__.log"},
		{arn: "arn:aws:logs:us-east-1:111122223333:log-group:sp ace\\back\x00nul", want: "logs/sp_ace_back_nul.log"},
		{arn: "arn:aws:logs:us-east-1:111122223333:log-group:///", err: true},
		{arn: "arn:aws:logs:us-east-1:111122223333:log-group:", err: true},
		{arn: "arn:aws:logs:us-east-1:111122223333:destination:x", err: true},
		{arn: "arn:aws:s3:::my-bucket", want: "s3/my-bucket/vpclattice-access.log"},
		{arn: "arn:aws:s3:::my-bucket/lattice/prod", want: "s3/my-bucket/lattice/prod/vpclattice-access.log"},
		{arn: "arn:aws:s3:::my-bucket/../../../root", want: "s3/my-bucket/__/__/__/root/vpclattice-access.log"},
		{arn: "arn:aws:s3:::", err: true},
		{arn: "arn:aws:firehose:us-east-1:111122223333:deliverystream/my-stream", want: "firehose/my-stream.log"},
		{arn: "arn:aws:firehose:us-east-1:111122223333:deliverystream/..", want: "firehose/__.log"},
		{arn: "arn:aws:firehose:us-east-1:111122223333:deliverystream/", err: true},
		{arn: "arn:aws:firehose:us-east-1:111122223333:stream/x", err: true},
		{arn: "arn:aws:sqs:us-east-1:111122223333:queue", err: true},
		{arn: "not-an-arn", err: true},
		{arn: "", err: true},
	} {
		t.Run(tc.arn, func(t *testing.T) {
			path, stdout, err := Destination(dir, tc.arn)
			if (err != nil) != tc.err {
				t.Fatalf("error %v, want error %v", err, tc.err)
			}
			if err != nil {
				if !errors.Is(err, ErrDestination) {
					t.Errorf("error %v is not ErrDestination", err)
				}
				return
			}
			if stdout != tc.stdout {
				t.Fatalf("stdout %v, want %v", stdout, tc.stdout)
			}
			want := ""
			if tc.want != "" {
				want = filepath.Join(dir, tc.want)
			}
			if path != want {
				t.Errorf("path %q, want %q", path, want)
			}
		})
	}
}

func FuzzDestination(f *testing.F) {
	for _, s := range []string{
		"arn:aws:logs:r:a:log-group:../../x", "arn:aws:s3:::b/../..", "arn:aws:firehose:r:a:deliverystream/..",
		"arn:aws:logs:r:a:log-group:/./../.", "arn:aws:s3:::/", "arn:aws:logs:r:a:log-group:\x00/..\\..",
	} {
		f.Add("/srv/logs", s)
		f.Add("relative/dir", s)
	}
	f.Fuzz(func(t *testing.T, dir, arn string) {
		if dir == "" {
			dir = "."
		}
		path, stdout, err := Destination(dir, arn)
		if err != nil || stdout {
			return
		}
		if !within(dir, path) {
			t.Fatalf("Destination(%q, %q) = %q escapes the directory", dir, arn, path)
		}
		rel, _ := filepath.Rel(filepath.Clean(dir), path)
		for _, seg := range strings.Split(rel, string(filepath.Separator)) {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("Destination(%q, %q) = %q has segment %q", dir, arn, path, seg)
			}
		}
		if !strings.HasSuffix(path, ".log") {
			t.Fatalf("Destination(%q, %q) = %q is not a .log file", dir, arn, path)
		}
	})
}
