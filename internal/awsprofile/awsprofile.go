// Package awsprofile resolves credentials, region and endpoint from the
// AWS environment variables and the shared config and credentials files,
// as the AWS CLI and SDKs do, for the sources that make sense against a
// self-hosted Trellis:
//
//   - credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
//     AWS_SESSION_TOKEN; a profile's aws_access_key_id,
//     aws_secret_access_key and aws_session_token (credentials file first,
//     then config file); a profile's credential_process;
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

// Load resolves opts. Credentials from a credential_process are read when
// first retrieved, and again before they expire.
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
	explicit := first(opts.Profile, getenv("AWS_PROFILE"))
	r := Resolved{Profile: first(explicit, "default")}
	cred, hasCred := credsFile[r.Profile]
	conf, hasConf := configFile[configSection(r.Profile)]
	if !hasConf && r.Profile == "default" {
		conf, hasConf = configFile["profile default"]
	}
	if explicit != "" && !hasCred && !hasConf {
		return Resolved{}, fmt.Errorf("profile %q is in neither %s nor %s", r.Profile, credsPath, configPath)
	}

	r.Region = first(opts.Region, getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), conf["region"])
	if !isTrue(getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")) && !isTrue(conf["ignore_configured_endpoint_urls"]) {
		r.Endpoint = first(getenv("AWS_ENDPOINT_URL"), conf["endpoint_url"])
	}

	envKey, envSecret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	switch {
	case explicit == "" && envKey != "" && envSecret != "":
		r.Credentials = static(envKey, envSecret, getenv("AWS_SESSION_TOKEN"), "environment")
	case cred["aws_access_key_id"] != "":
		r.Credentials, err = fromKeys(cred, credsPath, r.Profile)
	case conf["aws_access_key_id"] != "":
		r.Credentials, err = fromKeys(conf, configPath, r.Profile)
	case first(cred["credential_process"], conf["credential_process"]) != "":
		r.Credentials = aws.NewCredentialsCache(&processProvider{command: first(cred["credential_process"], conf["credential_process"])})
	default:
		err = noCredentials(r.Profile, conf, credsPath, configPath)
	}
	if err != nil {
		return Resolved{}, err
	}
	return r, nil
}

func static(key, secret, token, source string) aws.CredentialsProvider {
	c := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: token, Source: source}
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
}

func fromKeys(sec map[string]string, path, profile string) (aws.CredentialsProvider, error) {
	if sec["aws_secret_access_key"] == "" {
		return nil, fmt.Errorf("profile %q in %s has aws_access_key_id but no aws_secret_access_key", profile, path)
	}
	return static(sec["aws_access_key_id"], sec["aws_secret_access_key"], sec["aws_session_token"], path), nil
}

// noCredentials explains why a profile gave none.
func noCredentials(profile string, conf map[string]string, credsPath, configPath string) error {
	for _, k := range []string{"role_arn", "sso_session", "sso_start_url", "web_identity_token_file", "credential_source"} {
		if conf[k] != "" {
			return fmt.Errorf("profile %q uses %s, which needs AWS's own STS or IAM Identity Center; "+
				"Trellis signs with its own access keys: put aws_access_key_id and aws_secret_access_key "+
				"(from 'trellis create access-key') or a credential_process in the profile", profile, k)
		}
	}
	return fmt.Errorf("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give profile %q keys in %s "+
		"(or %s); 'trellis up --data DIR' writes DIR/credentials", profile, credsPath, configPath)
}

// processProvider runs a credential_process command, which prints
// {"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken",
// "Expiration"} on standard output.
type processProvider struct{ command string }

func (p *processProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", p.command)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("credential_process: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return parseProcessOutput(out)
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

// configSection is the config file's section of a profile.
func configSection(profile string) string {
	if profile == "default" {
		return "default"
	}
	return "profile " + profile
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

// Parse reads the INI dialect of the AWS shared files: [section] headers,
// key = value lines (keys lower-cased), # and ; comment lines. As in the
// AWS CLI, a # or ; inside a value is part of it (a credential_process
// command may hold one). The indented
// lines of a nested block (a key with an empty value, as in `s3 =`) are
// skipped. Of a section or key given twice, the later wins. Lines before
// the first section and lines that are neither are ignored.
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

func isTrue(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "true") }

func first(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
