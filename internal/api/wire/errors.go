// Package wire holds what the AWS-compatible APIs share on the wire: the
// error shape the AWS SDKs parse (x-amzn-ErrorType header plus a JSON body),
// request IDs, strict JSON decoding, opaque pagination tokens, and a small
// router that matches percent-encoded path labels the way the SDKs send
// them.
package wire

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/trellis-mesh/trellis/internal/model"
)

// Error types of the Lattice API and their HTTP status codes (§2.5).
const (
	TypeValidation   = "ValidationException"
	TypeAccessDenied = "AccessDeniedException"
	TypeNotFound     = "ResourceNotFoundException"
	TypeConflict     = "ConflictException"
	TypeQuota        = "ServiceQuotaExceededException"
	TypeThrottling   = "ThrottlingException"
	TypeInternal     = "InternalServerException"
)

// Validation reasons.
const (
	ReasonUnknownOperation = "unknownOperation"
	ReasonCannotParse      = "cannotParse"
	ReasonFieldValidation  = "fieldValidationFailed"
	ReasonOther            = "other"
)

// Error is an API error as the client sees it. Handlers return it (or any
// error; unknown ones become InternalServerException).
type Error struct {
	Type         string
	Status       int
	Message      string
	ResourceID   string
	ResourceType string
	Reason       string
	Fields       []model.FieldError
	ServiceCode  string
	QuotaCode    string
	RetryAfter   int
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// body is the JSON error body: every member a string or a list, as the SDK
// deserializers require.
type body struct {
	Message      string             `json:"message"`
	Reason       string             `json:"reason,omitempty"`
	FieldList    []model.FieldError `json:"fieldList,omitempty"`
	ResourceID   string             `json:"resourceId,omitempty"`
	ResourceType string             `json:"resourceType,omitempty"`
	ServiceCode  string             `json:"serviceCode,omitempty"`
	QuotaCode    string             `json:"quotaCode,omitempty"`
}

// NotFound reports a missing resource of type resType (e.g. "SERVICE").
func NotFound(resType, id string) *Error {
	return &Error{Type: TypeNotFound, Status: http.StatusNotFound, ResourceType: resType, ResourceID: id,
		Message: fmt.Sprintf("%s %s was not found", humanType(resType), id)}
}

// Conflict reports a request that conflicts with the state of a resource.
func Conflict(resType, id, format string, args ...any) *Error {
	return &Error{Type: TypeConflict, Status: http.StatusConflict, ResourceType: resType, ResourceID: id,
		Message: fmt.Sprintf(format, args...)}
}

// Quota reports an exceeded quota (HTTP 402 as Lattice models it).
func Quota(resType, quotaCode, format string, args ...any) *Error {
	return &Error{Type: TypeQuota, Status: http.StatusPaymentRequired, ResourceType: resType,
		ServiceCode: "vpc-lattice", QuotaCode: quotaCode, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports one invalid field.
func Invalid(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Type: TypeValidation, Status: http.StatusBadRequest, Reason: ReasonFieldValidation,
		Message: field + ": " + msg, Fields: []model.FieldError{{Name: field, Message: msg}}}
}

// BadRequest reports a request that cannot be parsed or is otherwise wrong.
func BadRequest(reason, format string, args ...any) *Error {
	return &Error{Type: TypeValidation, Status: http.StatusBadRequest, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// AccessDenied reports an authentication or authorization failure.
func AccessDenied(format string, args ...any) *Error {
	return &Error{Type: TypeAccessDenied, Status: http.StatusForbidden, Message: fmt.Sprintf(format, args...)}
}

// Throttled reports a request over the rate limit; clients retry after retryAfter seconds.
func Throttled(retryAfter int, format string, args ...any) *Error {
	return &Error{Type: TypeThrottling, Status: http.StatusTooManyRequests, RetryAfter: retryAfter,
		ServiceCode: "vpc-lattice", Message: fmt.Sprintf(format, args...)}
}

// Internal reports a server fault; the message never includes internal detail.
func Internal(requestID string) *Error {
	return &Error{Type: TypeInternal, Status: http.StatusInternalServerError, RetryAfter: 1,
		Message: "internal error; request " + requestID + " failed, see the server log"}
}

// AsError converts any error to a wire error: *Error as is,
// *model.ValidationError as ValidationException, anything else as
// InternalServerException (internal reports whether it was unexpected).
func AsError(err error, requestID string) (e *Error, internal bool) {
	var we *Error
	if errors.As(err, &we) {
		return we, false
	}
	var ve *model.ValidationError
	if errors.As(err, &ve) {
		return &Error{Type: TypeValidation, Status: http.StatusBadRequest, Reason: ReasonFieldValidation,
			Message: ve.Error(), Fields: ve.Fields}, false
	}
	return Internal(requestID), true
}

func humanType(t string) string {
	switch t {
	case "SERVICE_NETWORK":
		return "service network"
	case "SERVICE":
		return "service"
	case "LISTENER":
		return "listener"
	case "RULE":
		return "rule"
	case "TARGET_GROUP":
		return "target group"
	case "SERVICE_NETWORK_SERVICE_ASSOCIATION":
		return "service network service association"
	case "SERVICE_NETWORK_VPC_ASSOCIATION":
		return "service network VPC association"
	case "ACCESS_LOG_SUBSCRIPTION":
		return "access log subscription"
	case "AUTH_POLICY":
		return "auth policy"
	case "RESOURCE_POLICY":
		return "resource policy"
	case "VPC":
		return "VPC"
	}
	return t
}
