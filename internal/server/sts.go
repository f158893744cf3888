package server

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"time"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/iam"
)

// stsAPI answers the one STS action Trellis implements, GetCallerIdentity
// (AWS Query protocol, XML response), so `aws sts get-caller-identity
// --endpoint-url ...` and SDK credential checks work against Trellis.
type stsAPI struct{}

const stsNS = "https://sts.amazonaws.com/doc/2011-06-15/"

type callerIdentityResponse struct {
	XMLName xml.Name `xml:"GetCallerIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	} `xml:"GetCallerIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

func (s *stsAPI) serve(w http.ResponseWriter, r *http.Request, observe wire.Observer) {
	start := time.Now()
	status := s.handle(w, r)
	observe(actionOf(r), status, time.Since(start))
}

func actionOf(r *http.Request) string {
	if a := r.URL.Query().Get("Action"); a != "" {
		return a
	}
	return r.PostForm.Get("Action")
}

func (s *stsAPI) handle(w http.ResponseWriter, r *http.Request) int {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return writeSTSError(w, http.StatusBadRequest, "MalformedInput", "the request body is not a valid form")
	}
	action := r.Form.Get("Action")
	if action != "GetCallerIdentity" {
		return writeSTSError(w, http.StatusBadRequest, "InvalidAction",
			"Trellis implements only the STS action GetCallerIdentity, not "+url.QueryEscape(action))
	}
	c, ok := iam.CallerFrom(r.Context())
	if !ok {
		return writeSTSError(w, http.StatusForbidden, "AccessDenied", "the request is not authenticated")
	}
	var out callerIdentityResponse
	out.Xmlns = stsNS
	out.Result.Arn, out.Result.UserID, out.Result.Account = c.ARN, c.AccessKeyID, c.Account
	out.RequestID = w.Header().Get("x-amzn-RequestId")
	b, _ := xml.Marshal(out)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append([]byte(xml.Header), b...))
	return http.StatusOK
}

type stsErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

func writeSTSError(w http.ResponseWriter, status int, code, msg string) int {
	var e stsErrorResponse
	e.Xmlns = stsNS
	e.Error.Type, e.Error.Code, e.Error.Message = "Sender", code, msg
	e.RequestID = w.Header().Get("x-amzn-RequestId")
	b, _ := xml.Marshal(e)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write(append([]byte(xml.Header), b...))
	return status
}
