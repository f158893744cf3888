package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/native"
	"github.com/trellis-mesh/trellis/internal/iam"
	"github.com/trellis-mesh/trellis/internal/model"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Bootstrap is what the first start creates: the admin account, its admin
// principal and access key, and a default VPC.
type Bootstrap struct {
	Account      string `json:"account"`
	PrincipalARN string `json:"principalArn"`
	AccessKeyID  string `json:"accessKeyId"`
	VPCID        string `json:"vpcId"`
	// Created is true on the start that created everything.
	Created bool `json:"-"`
	// CredentialsPath and ConfigPath are the AWS CLI files written.
	CredentialsPath string `json:"-"`
	ConfigPath      string `json:"-"`
	// CAPath is the root certificate of the installation's CA (DATA/ca.pem).
	CAPath string `json:"-"`
	// SecretAccessKey is the admin key's secret (for an in-process gateway).
	SecretAccessKey string `json:"-"`
}

const bootstrapKey = "/meta/bootstrap"

// DefaultVPCCIDR lists the address blocks of the default VPC, comma
// separated: loopback, so targets can be the processes on this machine that
// the local gateway reaches, and a private block for examples.
const DefaultVPCCIDR = "127.0.0.0/8,10.0.0.0/16"

// EnsureBootstrap creates the admin identity and default VPC on first start
// and, on every start, writes DataDir/credentials and DataDir/config (AWS
// CLI formats, profile "default", endpoint_url pointing at this server, host
// prefix injection off) so the AWS CLI, the SDKs and the trellis CLI need no
// other setup.
func (s *Server) EnsureBootstrap(ctx context.Context, endpoint string) (*Bootstrap, error) {
	b, err := s.bootstrapState(ctx)
	if err != nil {
		return nil, err
	}
	kv, err := s.st.Get(ctx, iam.AccessKeyKey(b.AccessKeyID))
	if err != nil {
		return nil, fmt.Errorf("bootstrap: admin access key: %w", err)
	}
	var key model.AccessKey
	if err := json.Unmarshal(kv.Value, &key); err != nil {
		return nil, err
	}
	b.CredentialsPath = filepath.Join(s.cfg.DataDir, "credentials")
	b.ConfigPath = filepath.Join(s.cfg.DataDir, "config")
	creds := fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", key.ID, key.Secret)
	// disable_host_prefix_injection: the SDKs send Cloud Map's
	// DiscoverInstances and DiscoverInstancesRevision to "data-" + the
	// endpoint's host, which for 127.0.0.1 names no host at all; with the
	// setting they use endpoint_url as it is (docs/cloudmap.md).
	conf := fmt.Sprintf("[default]\nregion = %s\nendpoint_url = %s\ndisable_host_prefix_injection = true\n", s.cfg.Region, endpoint)
	if err := writeFile(b.CredentialsPath, creds); err != nil {
		return nil, err
	}
	if err := writeFile(b.ConfigPath, conf); err != nil {
		return nil, err
	}
	if b.CAPath, err = s.ca.WriteCAFile(s.cfg.DataDir); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	b.SecretAccessKey = key.Secret
	return b, nil
}

func writeFile(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

func (s *Server) bootstrapState(ctx context.Context) (*Bootstrap, error) {
	kv, err := s.st.Get(ctx, bootstrapKey)
	if err == nil {
		var b Bootstrap
		if err := json.Unmarshal(kv.Value, &b); err != nil {
			return nil, fmt.Errorf("bootstrap: decoding state: %w", err)
		}
		return &b, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	acct := model.Account{ID: model.NewAccountID(), Name: "admin", CreatedAt: now}
	p := model.Principal{Name: "admin", Type: model.PrincipalUser, Account: acct.ID,
		ARN: model.PrincipalARN(acct.ID, model.PrincipalUser, "admin"), Admin: true, CreatedAt: now}
	id, secret := model.NewAccessKey()
	key := model.AccessKey{ID: id, Secret: secret, Account: acct.ID, Principal: p.ARN, CreatedAt: now}
	b := Bootstrap{Account: acct.ID, PrincipalARN: p.ARN, AccessKeyID: id, Created: true}
	_, err = store.Update(ctx, s.st, func(tx *store.Tx) error {
		if _, err := tx.Get(bootstrapKey); err == nil {
			return errors.New("bootstrap: another process bootstrapped this data directory concurrently")
		}
		for k, v := range map[string]any{
			iam.AccountKey(acct.ID):                   acct,
			iam.PrincipalKey(acct.ID, p.Type, p.Name): p,
			iam.AccessKeyKey(id):                      key,
		} {
			raw, err := json.Marshal(v)
			if err != nil {
				return err
			}
			tx.Put(k, raw)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	vpc, err := native.CreateVPC(ctx, s.st, s.cfg.Region, acct.ID, "default", strings.Split(DefaultVPCCIDR, ","), nil, now)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: default VPC: %w", err)
	}
	b.VPCID = vpc.ID
	raw, _ := json.Marshal(b)
	if _, err := s.st.Txn(ctx, []store.Compare{{Key: bootstrapKey}}, []store.Op{store.Put(bootstrapKey, raw)}); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return &b, nil
}

// Endpoint is the http:// URL clients use for a listen address; a
// wildcard host becomes 127.0.0.1.
func Endpoint(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
