package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/vpclattice"
	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/awsprofile"
	"github.com/trellis-mesh/trellis/internal/nativeclient"
)

// clientFlags are the connection flags every client verb shares.
type clientFlags struct {
	endpoint string
	region   string
	profile  string
	data     string
	output   string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	p := cmd.PersistentFlags()
	p.StringVar(&f.endpoint, "endpoint-url", "", "API endpoint (default: AWS_ENDPOINT_URL, then endpoint_url of the AWS config profile, then http://127.0.0.1:7070)")
	p.StringVar(&f.region, "region", "", "region to sign for (default: AWS_REGION, then the AWS config profile)")
	p.StringVar(&f.profile, "profile", "", "AWS config/credentials profile (default: AWS_PROFILE, then \"default\")")
	p.StringVar(&f.data, "data", "", "use DATA/credentials and DATA/config written by 'trellis up --data DATA'")
	p.StringVarP(&f.output, "output", "o", "table", "output format: table, json or yaml")
}

// Client talks to a Trellis server through its APIs only.
type Client struct {
	Lattice  *vpclattice.Client
	Endpoint string
	Region   string
	aws      aws.Config
	http     *http.Client
}

const defaultEndpoint = "http://127.0.0.1:7070"

// connect resolves credentials, region and endpoint the way the AWS CLI
// does, with --data as a shortcut to the files 'trellis up' wrote.
func (f *clientFlags) connect(ctx context.Context) (*Client, error) {
	opts := awsprofile.Options{Profile: f.profile, Region: f.region}
	if f.data != "" {
		opts.CredentialsFile, opts.ConfigFile = filepath.Join(f.data, "credentials"), filepath.Join(f.data, "config")
		if _, err := os.Stat(opts.CredentialsFile); err != nil {
			return nil, fmt.Errorf("--data %s: no credentials file there; run 'trellis up --data %s' first", f.data, f.data)
		}
	}
	p, err := awsprofile.Load(opts)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	region := cmp.Or(p.Region, "us-east-1")
	endpoint := strings.TrimSuffix(cmp.Or(f.endpoint, p.Endpoint, defaultEndpoint), "/")
	// Credentials from a credential_process are fetched again a minute
	// before they expire.
	creds := aws.NewCredentialsCache(p.Credentials, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = time.Minute })
	if _, err := creds.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("credentials of profile %q: %w", p.Profile, err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	cfg := aws.Config{Region: region, Credentials: creds, HTTPClient: hc, BaseEndpoint: aws.String(endpoint)}
	return &Client{
		Lattice:  vpclattice.NewFromConfig(cfg),
		Endpoint: endpoint, Region: region, aws: cfg, http: hc,
	}, nil
}

// APIError is an error answer of the native API.
type APIError = nativeclient.APIError

// Native calls Trellis's own API: method and path under /trellis/v1, in
// (may be nil) as the JSON body, the JSON answer decoded into out (may be nil).
func (c *Client) Native(ctx context.Context, method, path string, in, out any) error {
	nc := nativeclient.Client{Endpoint: c.Endpoint, Region: c.Region, Credentials: c.aws.Credentials, HTTP: c.http}
	return nc.Call(ctx, method, path, in, out)
}

// isNotFound reports whether err is a ResourceNotFoundException from either API.
func isNotFound(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code == "ResourceNotFoundException"
	}
	var coder interface{ ErrorCode() string }
	return errors.As(err, &coder) && coder.ErrorCode() == "ResourceNotFoundException"
}
