// Package nativeclient calls Trellis's own API (/trellis/v1) with SigV4
// signatures, for the CLI and the agent: the AWS SDKs cover the
// Lattice and Cloud Map APIs, and this covers the rest.
package nativeclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigningName is the service name native API requests are signed for.
const SigningName = "trellis"

// Client calls the native API of one server.
type Client struct {
	// Endpoint is the server's URL, without a trailing slash.
	Endpoint    string
	Region      string
	Credentials aws.CredentialsProvider
	// HTTP is the client to use; http.DefaultClient when nil.
	HTTP *http.Client
}

// APIError is an error answer of the native API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// Call sends method path (under /trellis/v1) with in (may be nil) as the
// JSON body and decodes the JSON answer into out (may be nil). An error
// answer is an *APIError.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Endpoint+"/trellis/v1"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	creds, err := c.Credentials.Retrieve(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), SigningName, c.Region, time.Now()); err != nil {
		return err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("calling %s: %w", c.Endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &e)
		code := resp.Header.Get("x-amzn-ErrorType")
		if code == "" {
			code = resp.Status
		}
		return &APIError{Status: resp.StatusCode, Code: code, Message: e.Message}
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}
