package awsprofile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const credentialsFile = `
# written by trellis up
[default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = secret/default+1

[dev]
aws_access_key_id=AKIDDEV
aws_secret_access_key=secretdev
aws_session_token = tokendev

[half]
aws_access_key_id = AKIDHALF

[credsregion]
aws_access_key_id = AKIDCR
aws_secret_access_key = secretcr
region = from-credentials-file

[keysandrole]
aws_access_key_id = AKIDKR
aws_secret_access_key = secretkr
role_arn = arn:aws:iam::123456789012:role/x
`

const configFile = `
[default]
region = eu-west-1
endpoint_url = http://127.0.0.1:7070
s3 =
  addressing_style = path
  region = nested-must-not-win

[profile dev]
region = us-west-2 # an inline comment

[profile credsregion]
region = from-config-file

[profile cfgkeys]
aws_access_key_id = AKIDCFG
aws_secret_access_key = secretcfg
region = ap-south-1
ignore_configured_endpoint_urls = true
endpoint_url = http://ignored

[profile role]
role_arn = arn:aws:iam::123456789012:role/x
source_profile = default

[profile proc]
credential_process = PROC
`

// env is a fake environment: only what a test sets is there.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func setup(t *testing.T, e env) (Options, string) {
	t.Helper()
	dir := t.TempDir()
	creds, conf := filepath.Join(dir, "credentials"), filepath.Join(dir, "config")
	script := filepath.Join(dir, "proc.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$1\" >&2\ncat \""+dir+"/proc.json\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for path, body := range map[string]string{creds: credentialsFile, conf: strings.ReplaceAll(configFile, "PROC", script+" 'a;b#c' ; the rest is a comment")} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e["AWS_SHARED_CREDENTIALS_FILE"], e["AWS_CONFIG_FILE"] = creds, conf
	return Options{Getenv: e.get}, dir
}

func retrieve(t *testing.T, r Resolved) (key, secret, token string) {
	t.Helper()
	c, err := r.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c.AccessKeyID, c.SecretAccessKey, c.SessionToken
}

func TestResolution(t *testing.T) {
	for _, tc := range []struct {
		name                string
		env                 env
		opts                Options
		key, token          string
		region, endpoint    string
		wantProfileResolved string
	}{
		{name: "default profile from the files", env: env{},
			key: "AKIDDEFAULT", region: "eu-west-1", endpoint: "http://127.0.0.1:7070", wantProfileResolved: "default"},
		{name: "environment keys before the default profile",
			env: env{"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "tokenenv"},
			key: "AKIDENV", token: "tokenenv", region: "eu-west-1", endpoint: "http://127.0.0.1:7070", wantProfileResolved: "default"},
		{name: "environment keys before AWS_PROFILE, whose region still counts",
			env: env{"AWS_PROFILE": "dev", "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s"},
			key: "AKIDENV", region: "us-west-2", wantProfileResolved: "dev"},
		{name: "environment keys with an AWS_PROFILE that does not exist",
			env: env{"AWS_PROFILE": "ghost", "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s"},
			key: "AKIDENV", wantProfileResolved: "ghost"},
		{name: "a profile named by the flag before environment keys",
			env: env{"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s"}, opts: Options{Profile: "dev"},
			key: "AKIDDEV", token: "tokendev", region: "us-west-2", wantProfileResolved: "dev"},
		{name: "AWS_DEFAULT_PROFILE", env: env{"AWS_DEFAULT_PROFILE": "dev"},
			key: "AKIDDEV", token: "tokendev", region: "us-west-2", wantProfileResolved: "dev"},
		{name: "the credentials file's settings win over the config file's", env: env{}, opts: Options{Profile: "credsregion"},
			key: "AKIDCR", region: "from-credentials-file", wantProfileResolved: "credsregion"},
		{name: "the flag's profile before AWS_PROFILE", env: env{"AWS_PROFILE": "nope"}, opts: Options{Profile: "dev"},
			key: "AKIDDEV", token: "tokendev", region: "us-west-2", wantProfileResolved: "dev"},
		{name: "keys in the config file; endpoint_url ignored by the profile", env: env{}, opts: Options{Profile: "cfgkeys"},
			key: "AKIDCFG", region: "ap-south-1", wantProfileResolved: "cfgkeys"},
		{name: "region: flag, then AWS_REGION, then AWS_DEFAULT_REGION",
			env: env{"AWS_REGION": "r-env", "AWS_DEFAULT_REGION": "r-default"}, opts: Options{Region: "r-flag"},
			key: "AKIDDEFAULT", region: "r-flag", endpoint: "http://127.0.0.1:7070", wantProfileResolved: "default"},
		{name: "AWS_REGION before AWS_DEFAULT_REGION", env: env{"AWS_REGION": "r-env", "AWS_DEFAULT_REGION": "r-default"},
			key: "AKIDDEFAULT", region: "r-env", endpoint: "http://127.0.0.1:7070", wantProfileResolved: "default"},
		{name: "AWS_ENDPOINT_URL before endpoint_url", env: env{"AWS_ENDPOINT_URL": "http://env:1"},
			key: "AKIDDEFAULT", region: "eu-west-1", endpoint: "http://env:1", wantProfileResolved: "default"},
		{name: "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", env: env{"AWS_ENDPOINT_URL": "http://env:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
			key: "AKIDDEFAULT", region: "eu-west-1", wantProfileResolved: "default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, _ := setup(t, tc.env)
			opts.Profile, opts.Region = tc.opts.Profile, tc.opts.Region
			r, err := Load(opts)
			if err != nil {
				t.Fatal(err)
			}
			key, _, token := retrieve(t, r)
			if key != tc.key || token != tc.token || r.Region != tc.region || r.Endpoint != tc.endpoint || r.Profile != tc.wantProfileResolved {
				t.Errorf("got key %q token %q region %q endpoint %q profile %q; want %q %q %q %q %q", key, token, r.Region, r.Endpoint,
					r.Profile, tc.key, tc.token, tc.region, tc.endpoint, tc.wantProfileResolved)
			}
		})
	}
}

func TestExplicitFilesReplaceTheEnvironment(t *testing.T) {
	opts, _ := setup(t, env{})
	dir := t.TempDir()
	opts.CredentialsFile, opts.ConfigFile = filepath.Join(dir, "credentials"), filepath.Join(dir, "config")
	if err := os.WriteFile(opts.CredentialsFile, []byte("[default]\naws_access_key_id = AKIDDATA\naws_secret_access_key = x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if key, _, _ := retrieve(t, r); key != "AKIDDATA" || r.Region != "" {
		t.Errorf("key %q region %q: the files of AWS_* were read instead of the given ones", key, r.Region)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile string
		env     env
		want    string
	}{
		{name: "unknown profile", profile: "ghost", env: env{}, want: `profile "ghost" is in neither`},
		{name: "role_arn", profile: "role", env: env{}, want: "role_arn, which needs AWS's own STS"},
		{name: "key without secret", profile: "half", env: env{}, want: "no aws_secret_access_key"},
		{name: "role_arn beside keys", profile: "keysandrole", env: env{}, want: "role_arn, which needs AWS's own STS"},
		{name: "AWS_PROFILE that does not exist, no keys", env: env{"AWS_PROFILE": "ghost"}, want: `profile "ghost" (from AWS_PROFILE or AWS_DEFAULT_PROFILE) is in neither`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, _ := setup(t, tc.env)
			opts.Profile = tc.profile
			_, err := Load(opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
	// No files, no environment.
	dir := t.TempDir()
	_, err := Load(Options{Getenv: env{"HOME": dir}.get})
	if err == nil || !strings.Contains(err.Error(), "no credentials") || !strings.Contains(err.Error(), filepath.Join(dir, ".aws", "credentials")) {
		t.Errorf("nothing configured: %v", err)
	}
	// A file that cannot be read is an error, not an empty profile.
	if _, err := Load(Options{CredentialsFile: dir, Getenv: env{"HOME": dir}.get}); err == nil {
		t.Error("a directory as the credentials file was accepted")
	}
}

func TestCredentialProcess(t *testing.T) {
	opts, dir := setup(t, env{})
	opts.Profile = "proc"
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "proc.json"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "sp", "SessionToken": "tp", "Expiration": "` +
		exp.Format(time.RFC3339) + `"}`)
	r, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "AKIDPROC" || c.SecretAccessKey != "sp" || c.SessionToken != "tp" || !c.CanExpire || !c.Expires.Equal(exp) {
		t.Errorf("credentials %+v", c)
	}

	for body, want := range map[string]string{
		`not json`: "not the JSON document",
		`{"Version": 2, "AccessKeyId": "a", "SecretAccessKey": "b"}`: "Version 2",
		`{"Version": 1, "AccessKeyId": "a"}`:                         "SecretAccessKey are required",
	} {
		write(body)
		r, err := Load(opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Credentials.Retrieve(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("output %q: err %v, want %q", body, err, want)
		}
	}
	// A command that fails is reported with what it printed on stderr:
	// here its argument, which shows that ";" and "#" inside a value
	// reached the shell and the inline comment did not.
	if err := os.Remove(filepath.Join(dir, "proc.json")); err != nil {
		t.Fatal(err)
	}
	r, _ = Load(opts)
	_, err = r.Credentials.Retrieve(context.Background())
	if err == nil || !strings.Contains(err.Error(), "a;b#c") || strings.Contains(err.Error(), "rest is a comment") {
		t.Errorf("failing command: %v", err)
	}
}

func TestProfileDefaultSection(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	body := "[default]\nregion = plain\naws_access_key_id = A\naws_secret_access_key = B\n[profile default]\nregion = prefixed\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Load(Options{ConfigFile: conf, CredentialsFile: filepath.Join(dir, "none"), Getenv: env{}.get})
	if err == nil || r.Region != "" {
		// [profile default] replaces [default] whole, as in the SDK: no keys.
		t.Fatalf("Load = %+v, %v; want no credentials", r, err)
	}
	r, err = Load(Options{ConfigFile: conf, CredentialsFile: filepath.Join(dir, "none"),
		Getenv: env{"AWS_ACCESS_KEY_ID": "E", "AWS_SECRET_ACCESS_KEY": "S"}.get})
	if err != nil || r.Region != "prefixed" {
		t.Errorf("region %q, %v; want the [profile default] section's", r.Region, err)
	}
}

func TestParse(t *testing.T) {
	got := Parse([]byte("top = ignored\n[ profile   x ] ; comment\nKey = v=with=equals ; a comment\nhash = a#b;c\n; comment\n# comment\n" +
		"nested =\n  inner = no\n\tinner2 = no\nafter = yes\n  indented = ordinary\n[profile x]\nafter = again\n[broken\nlost = 1\n"))
	want := map[string]string{"key": "v=with=equals", "hash": "a#b;c", "indented": "ordinary", "after": "again"}
	if len(got) != 1 || len(got["profile x"]) != len(want) {
		t.Fatalf("Parse = %v", got)
	}
	for k, v := range want {
		if got["profile x"][k] != v {
			t.Errorf("%s = %q, want %q", k, got["profile x"][k], v)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(credentialsFile))
	f.Add([]byte(configFile))
	f.Add([]byte("[a]\nk =\n  x = y\nz = 1\n[ b ]\nK=V"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for name, sec := range Parse(b) {
			if name != strings.Join(strings.Fields(name), " ") {
				t.Errorf("section name %q not normalised", name)
			}
			for k, v := range sec {
				if k != strings.ToLower(k) || v == "" || v != strings.TrimSpace(v) {
					t.Errorf("[%s] %q = %q", name, k, v)
				}
			}
		}
	})
}
