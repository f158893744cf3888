package cli

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/trellis-mesh/trellis/internal/controlclient"
	"github.com/trellis-mesh/trellis/internal/gateway"
	"github.com/trellis-mesh/trellis/internal/server"
)

// localGateway builds the gateway `trellis up` runs for its default VPC: it
// talks to the server over the API like any other node, with the admin key,
// keeps its state in DATA/gateway, and adds its metrics to the server's
// /metrics.
func localGateway(srv *server.Server, b *server.Bootstrap, endpoint string, flags gateway.Config, log *slog.Logger, s Streams) (*gateway.Gateway, error) {
	cfg := flags
	cfg.Logger = log.With("role", "gateway")
	cfg.Registry = srv.Registry()
	cfg.Stdout = s.Out
	cfg.Control = controlclient.Config{
		Endpoint:    endpoint,
		Credentials: credentials.NewStaticCredentialsProvider(b.AccessKeyID, b.SecretAccessKey, ""),
		Region:      srv.Region(),
		NodeID:      "local-" + b.VPCID,
		VPCID:       b.VPCID,
		StateDir:    filepath.Join(srv.DataDir(), "gateway"),
	}
	return gateway.New(cfg)
}

// serveWithGateway runs the server and the gateway until ctx ends, and
// stops both: the gateway first, so its listeners drain while the server
// still answers.
func serveWithGateway(ctx context.Context, srv *server.Server, gw *gateway.Gateway) error {
	gctx, stopGW := context.WithCancel(context.Background())
	gwDone := make(chan error, 1)
	go func() { gwDone <- gw.Run(gctx) }()
	sctx, stopSrv := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(sctx) }()
	var gwErr, srvErr error
	select {
	case <-ctx.Done():
		stopGW()
		gwErr = <-gwDone
		stopSrv()
		srvErr = <-srvDone
	case gwErr = <-gwDone:
		stopSrv()
		srvErr = <-srvDone
	case srvErr = <-srvDone:
		stopGW()
		gwErr = <-gwDone
	}
	stopGW()
	stopSrv()
	return errors.Join(srvErr, gwErr)
}
