package deps
import (
 _ "golang.org/x/net/dns/dnsmessage"
 _ "golang.org/x/net/http2"
 _ "google.golang.org/grpc"
 _ "google.golang.org/grpc/health/grpc_health_v1"
)
