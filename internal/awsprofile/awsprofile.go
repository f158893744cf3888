// Package awsprofile resolves credentials, region and endpoint from the
// AWS environment variables and the shared config and credentials files,
// as the AWS CLI and SDKs do, for the sources that make sense against a
// self-hosted Trellis:
//
//   - profile: a flag, AWS_PROFILE, AWS_DEFAULT_PROFILE, "default"; its
//     settings are its config-file section overlaid with its
//     credentials-file section;
//   - credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
//     AWS_SESSION_TOKEN unless the profile came from a flag; the profile's
//     aws_access_key_id, aws_secret_access_key and aws_session_token; its
//     credential_process;
//   - region: a flag, AWS_REGION, AWS_DEFAULT_REGION, the profile's region;
//   - endpoint: AWS_ENDPOINT_URL, the profile's endpoint_url (both ignored
//     with AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true or the profile's
//     ignore_configured_endpoint_urls = true).
//
// Sources that need AWS's own services (role_arn with STS, sso_* with IAM
// Identity Center, web identity, instance and container metadata) are not
// followed: a profile that relies on one gets an error that says so.
//
// The SDK's own resolver (aws-sdk-go-v2/config) brings in the clients of
// all those services and their tables, which every process of the single
// trellis binary would load at start; this package is what Trellis needs
// of it.
package awsprofile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Options are what the caller decides; empty fields fall back to the
// environment and the defaults.
type Options struct {
	// Profile is the profile a flag named; else AWS_PROFILE, else "default".
	Profile string
	// CredentialsFile and ConfigFile replace AWS_SHARED_CREDENTIALS_FILE
	// and AWS_CONFIG_FILE (default ~/.aws/credentials and ~/.aws/config).
	CredentialsFile, ConfigFile string
	// Region is the region a flag named.
	Region string
	// Getenv reads the environment; default os.Getenv.
	Getenv func(string) string
}

// Resolved is what Load found.
type Resolved struct {
	Profile  string
	Region   string // "" when no source names one
	Endpoint string // "" when no source names one
	// Credentials is never nil.
	Credentials aws.CredentialsProvider
}

// Load resolves opts. Resolved.Credentials is not cached: a
// credential_process runs at every Retrieve, so callers wrap it in
// aws.NewCredentialsCache.
func Load(opts Options) (Resolved, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	credsPath := first(opts.CredentialsFile, getenv("AWS_SHARED_CREDENTIALS_FILE"), homeFile(getenv, "credentials"))
	configPath := first(opts.ConfigFile, getenv("AWS_CONFIG_FILE"), homeFile(getenv, "config"))
	credsFile, err := readFile(credsPath)
	if err != nil {
		return Resolved{}, err
	}
	configFile, err := readFile(configPath)
	if err != nil {
		return Resolved{}, err
	}
	r := Resolved{Profile: first(opts.Profile, getenv("AWS_PROFILE"), getenv("AWS_DEFAULT_PROFILE"), "default")}
	prof, found := profile(r.Profile, configFile, credsFile)
	if opts.Profile != "" && !found {
		return Resolved{}, fmt.Errorf("profile %q is in neither %s nor %s", r.Profile, credsPath, configPath)
	}

	r.Region = first(opts.Region, getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), prof["region"])
	if !isTrue(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) && !isTrue(prof["ignore_configured_endpoint_urls"]) {
		r.Endpoint = first(getenv("AWS_ENDPOINT_URL"), prof["endpoint_url"])
	}

	// As in the SDKs, keys in the environment win over AWS_PROFILE but not
	// over a profile named on the command line.
	envKey, envSecret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	switch {
	case opts.Profile == "" && envKey != "" && envSecret != "":
		r.Credentials = static(envKey, envSecret, getenv("AWS_SESSION_TOKEN"), "environment")
	case !found && r.Profile != "default":
		// Named by AWS_PROFILE or AWS_DEFAULT_PROFILE (a flag's missing
		// profile failed above).
		err = fmt.Errorf("profile %q (from AWS_PROFILE or AWS_DEFAULT_PROFILE) is in neither %s nor %s, and "+
			"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set", r.Profile, credsPath, configPath)
	case !found || needsAWS(prof) != "" || prof["aws_access_key_id"] == "" && prof["credential_process"] == "":
		err = noCredentials(r.Profile, prof, credsPath, configPath)
	case prof["aws_access_key_id"] != "":
		if prof["aws_secret_access_key"] == "" {
			err = fmt.Errorf("profile %q has aws_access_key_id but no aws_secret_access_key (%s, %s)", r.Profile, credsPath, configPath)
			break
		}
		r.Credentials = static(prof["aws_access_key_id"], prof["aws_secret_access_key"], prof["aws_session_token"], "profile "+r.Profile)
	default:
		r.Credentials = &processProvider{command: prof["credential_process"]}
	}
	if err != nil {
		return Resolved{}, err
	}
	return r, nil
}

// profile is a profile's settings: its config-file section ([profile
// NAME], or [default]; [profile default] wins over [default] as in the
// SDKs) overlaid with its credentials-file section ([NAME]), which wins.
func profile(name string, configFile, credsFile map[string]map[string]string) (map[string]string, bool) {
	conf, inConf := configFile["profile "+name]
	if !inConf && name == "default" {
		conf, inConf = configFile["default"]
	}
	cred, inCreds := credsFile[name]
	out := make(map[string]string, len(conf)+len(cred))
	for k, v := range conf {
		out[k] = v
	}
	for k, v := range cred {
		out[k] = v
	}
	return out, inConf || inCreds
}

func static(key, secret, token, source string) aws.CredentialsProvider {
	c := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: token, Source: source}
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
}

// noCredentials explains why a profile gave none.
func noCredentials(profile string, prof map[string]string, credsPath, configPath string) error {
	if k := needsAWS(prof); k != "" {
		return fmt.Errorf("profile %q uses %s, which needs AWS's own STS or IAM Identity Center; "+
			"Trellis signs with its own access keys: put aws_access_key_id and aws_secret_access_key "+
			"(from 'trellis create access-key') or a credential_process in the profile", profile, k)
	}
	return fmt.Errorf("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give profile %q keys in %s "+
		"(or %s); 'trellis up --data DIR' writes DIR/credentials", profile, credsPath, configPath)
}

// needsAWS names the setting of prof, if any, that gets credentials from
// AWS's own services; the SDKs follow it before any keys of the profile.
func needsAWS(prof map[string]string) string {
	for _, k := range []string{"role_arn", "source_profile", "credential_source", "sso_session", "sso_start_url",
		"web_identity_token_file", "login_session"} {
		if prof[k] != "" {
			return k
		}
	}
	return ""
}

// processProvider runs a credential_process command, which prints
// {"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken",
// "Expiration"} on standard output.
type processProvider struct{ command string }

func (p *processProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", p.command)
	// As in the SDKs, the command may ask the user (an MFA code, a touch
	// of a key): it has the terminal's standard input and error.
	var stderr tail
	cmd.Stdin, cmd.Stderr = os.Stdin, io.MultiWriter(os.Stderr, &stderr)
	out, err := cmd.Output()
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("credential_process: %w: %s", err, strings.TrimSpace(string(stderr.b)))
	}
	return parseProcessOutput(out)
}

// tail keeps the last 1 KiB written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 1024 {
		t.b = t.b[len(t.b)-1024:]
	}
	return len(p), nil
}

func parseProcessOutput(out []byte) (aws.Credentials, error) {
	var v struct {
		Version         int
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string
		Expiration      *time.Time
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return aws.Credentials{}, fmt.Errorf("credential_process: output is not the JSON document the AWS CLI expects: %w", err)
	}
	switch {
	case v.Version != 1:
		return aws.Credentials{}, fmt.Errorf("credential_process: Version %d, want 1", v.Version)
	case v.AccessKeyID == "" || v.SecretAccessKey == "":
		return aws.Credentials{}, errors.New("credential_process: AccessKeyId and SecretAccessKey are required")
	}
	c := aws.Credentials{AccessKeyID: v.AccessKeyID, SecretAccessKey: v.SecretAccessKey, SessionToken: v.SessionToken,
		Source: "credential_process"}
	if v.Expiration != nil {
		c.CanExpire, c.Expires = true, *v.Expiration
	}
	return c, nil
}

func homeFile(getenv func(string) string, name string) string {
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return ""
		}
	}
	return filepath.Join(home, ".aws", name)
}

// readFile parses path; a missing file is empty.
func readFile(path string) (map[string]map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return Parse(b), nil
}

// Parse reads the INI dialect of the AWS shared files as the AWS SDK for
// Go reads it: [section] headers, key = value lines (keys lower-cased),
// comment lines starting with # or ;, and inline comments: a # or ;
// after a blank ends the value. The indented lines of a nested block (a
// key with an empty value, as in `s3 =`) are skipped; other indented
// lines are ordinary. Of a section or key given twice, the later wins.
// Lines before the first section and lines that are neither are ignored.
func Parse(b []byte) map[string]map[string]string {
	out := map[string]map[string]string{}
	var cur map[string]string
	nested := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if nested && raw[0] != line[0] { // indented: part of the nested block
			continue
		}
		nested = false
		line = stripComment(line)
		if line == "" {
			continue
		}
		if line[0] == '[' {
			name, _, ok := strings.Cut(line[1:], "]")
			cur = nil
			if ok {
				name = strings.Join(strings.Fields(name), " ")
				if cur = out[name]; cur == nil {
					cur = map[string]string{}
					out[name] = cur
				}
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || cur == nil {
			continue
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if v == "" {
			nested = true
			continue
		}
		cur[k] = v
	}
	return out
}

// stripComment cuts an inline comment: # or ; after a blank.
func stripComment(s string) string {
	for i := 1; i < len(s); i++ {
		if (s[i] == '#' || s[i] == ';') && (s[i-1] == ' ' || s[i-1] == '\t') {
			return strings.TrimSpace(s[:i])
		}
	}
	return s
}

func isTrue(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "true") }

func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
