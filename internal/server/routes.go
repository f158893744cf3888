package server

import (
	"net/http"
	"strings"

	"github.com/trellis-mesh/trellis/internal/api/cloudmap"
	"github.com/trellis-mesh/trellis/internal/api/native"
	"github.com/trellis-mesh/trellis/internal/api/wire"
)

// route sends native-API paths to na, STS Query requests (POST / with a
// form body, or GET /?Action=...) to sts, awsJson requests (those with
// X-Amz-Target) to the Cloud Map API cm, and everything else to the
// Lattice API.
func route(la, na, cm http.Handler, sts *stsAPI, observe wire.Observer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-amzn-RequestId", wire.NewRequestID())
		switch {
		case strings.HasPrefix(r.URL.Path, native.Prefix+"/"):
			na.ServeHTTP(w, r)
		case r.URL.Path == "/" && isQueryProtocol(r):
			sts.serve(w, r, observe)
		case cloudmap.IsRequest(r):
			cm.ServeHTTP(w, r)
		default:
			la.ServeHTTP(w, r)
		}
	})
}

func isQueryProtocol(r *http.Request) bool {
	if r.Method == http.MethodGet {
		return r.URL.Query().Get("Action") != ""
	}
	return r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}
