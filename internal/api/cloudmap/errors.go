package cloudmap

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/trellis-mesh/trellis/internal/api/wire"
	"github.com/trellis-mesh/trellis/internal/model"
)

// Error types of the Cloud Map API (reference §5.4), exactly as the SDKs
// match them, with the HTTP status codes of the Smithy model's httpError
// traits. The SDKs decide on the type alone: the Go SDK reads the
// X-Amzn-ErrorType header, then the body's __type; botocore (the AWS CLI)
// reads only __type.
const (
	TypeInvalidInput            = "InvalidInput"
	TypeNamespaceAlreadyExists  = "NamespaceAlreadyExists"
	TypeServiceAlreadyExists    = "ServiceAlreadyExists"
	TypeResourceLimitExceeded   = "ResourceLimitExceeded"
	TypeAttributesLimitExceeded = "ServiceAttributesLimitExceededException"
	TypeTooManyTags             = "TooManyTagsException"
	TypeNamespaceNotFound       = "NamespaceNotFound"
	TypeServiceNotFound         = "ServiceNotFound"
	TypeInstanceNotFound        = "InstanceNotFound"
	TypeOperationNotFound       = "OperationNotFound"
	TypeCustomHealthNotFound    = "CustomHealthNotFound"
	TypeResourceNotFound        = "ResourceNotFoundException"
	TypeDuplicateRequest        = "DuplicateRequest"
	TypeResourceInUse           = "ResourceInUse"
	TypeRequestLimitExceeded    = "RequestLimitExceeded"
	TypeUnknownOperation        = "UnknownOperationException"
	TypeAccessDenied            = "AccessDeniedException"
	TypeThrottling              = "ThrottlingException"
	TypeInternalFailure         = "InternalFailure"
	TypeSerialization           = "SerializationException"
	TypeUnrecognizedClient      = "UnrecognizedClientException"
	TypeInvalidSignature        = "InvalidSignatureException"
	TypeMissingAuthToken        = "MissingAuthenticationTokenException"
)

var statusOf = map[string]int{
	TypeInvalidInput: 400, TypeNamespaceAlreadyExists: 400, TypeServiceAlreadyExists: 400,
	TypeResourceLimitExceeded: 400, TypeAttributesLimitExceeded: 400, TypeTooManyTags: 400,
	TypeNamespaceNotFound: 404, TypeServiceNotFound: 404, TypeInstanceNotFound: 404, TypeOperationNotFound: 404,
	TypeCustomHealthNotFound: 404, TypeResourceNotFound: 404, TypeDuplicateRequest: 409, TypeResourceInUse: 409,
	TypeRequestLimitExceeded: 429, TypeUnknownOperation: 400, TypeAccessDenied: 400, TypeThrottling: 400,
	TypeInternalFailure: 500, TypeSerialization: 400, TypeUnrecognizedClient: 400, TypeInvalidSignature: 400,
	TypeMissingAuthToken: 403,
}

// Error is a Cloud Map error as the client sees it. Extra holds the
// modeled members some errors carry (NamespaceAlreadyExists.NamespaceId,
// DuplicateRequest.DuplicateOperationId, TooManyTagsException.ResourceName...).
type Error struct {
	Type       string
	Message    string
	Extra      map[string]string
	RetryAfter int
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Status is the HTTP status code of the error.
func (e *Error) Status() int {
	if s, ok := statusOf[e.Type]; ok {
		return s
	}
	return http.StatusBadRequest
}

// errorf builds an error of type typ.
func errorf(typ, format string, args ...any) *Error {
	return &Error{Type: typ, Message: fmt.Sprintf(format, args...)}
}

// invalid reports an invalid request member.
func invalid(field, format string, args ...any) *Error {
	return &Error{Type: TypeInvalidInput, Message: field + ": " + fmt.Sprintf(format, args...)}
}

func with(e *Error, kv ...string) *Error {
	if e.Extra == nil {
		e.Extra = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			e.Extra[kv[i]] = kv[i+1]
		}
	}
	return e
}

// AccessDenied is the error of an unauthenticated or unauthorized request.
func AccessDenied(msg string) *Error { return &Error{Type: TypeAccessDenied, Message: msg} }

// AuthError maps a SigV4 failure reason (as the server's authenticator
// names them) to the error AWS's JSON services answer with.
func AuthError(reason, msg string) *Error {
	switch reason {
	case "unknown_key":
		return &Error{Type: TypeUnrecognizedClient, Message: msg}
	case "signature_mismatch":
		return &Error{Type: TypeInvalidSignature, Message: msg}
	case "unsigned":
		return &Error{Type: TypeMissingAuthToken, Message: msg}
	}
	return AccessDenied(msg)
}

// Throttled is the error of a request over the server's rate limit: the
// modeled RequestLimitExceeded for the discovery operations (the only ones
// that declare it), ThrottlingException, which every SDK retries, for
// the others.
func Throttled(r *http.Request, retryAfter int, msg string) *Error {
	typ := TypeThrottling
	if op := operationOf(r); op == "DiscoverInstances" || op == "DiscoverInstancesRevision" {
		typ = TypeRequestLimitExceeded
	}
	return &Error{Type: typ, Message: msg, RetryAfter: retryAfter}
}

// asError converts any error into a Cloud Map error: *Error as is, a
// model.ValidationError or a wire validation error as InvalidInput,
// anything else as InternalFailure (internal reports it was unexpected).
func asError(err error, requestID string) (e *Error, internal bool) {
	if errors.As(err, &e) {
		return e, false
	}
	var ve *model.ValidationError
	if errors.As(err, &ve) {
		return &Error{Type: TypeInvalidInput, Message: ve.Error()}, false
	}
	var we *wire.Error
	if errors.As(err, &we) && we.Type == wire.TypeValidation {
		return &Error{Type: TypeInvalidInput, Message: we.Message}, false
	}
	return &Error{Type: TypeInternalFailure, RetryAfter: 1,
		Message: "internal error; request " + requestID + " failed, see the server log"}, true
}

// WriteError writes e in the awsJson1.1 error form: the type in the
// X-Amzn-ErrorType header and in the body's __type, the message in
// Message, and the error's modeled members beside it.
func WriteError(w http.ResponseWriter, e *Error) {
	body := make(map[string]string, 2+len(e.Extra))
	for k, v := range e.Extra {
		body[k] = v
	}
	body["__type"] = e.Type
	body["Message"] = e.Message
	b, err := json.Marshal(body)
	if err != nil {
		b = []byte(`{"__type":"InternalFailure","Message":"encoding the error failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Amzn-ErrorType", e.Type)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status())
	_, _ = w.Write(b)
}
