package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trellis-mesh/trellis/internal/model"
)

// MaxBodyBytes bounds a request body: the largest legal Lattice request
// (a 36,864-character auth policy, or 100 targets) is far below it.
const MaxBodyBytes = 1 << 20

// NewRequestID returns a random UUID (version 4) string.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ReadBody reads the whole request body up to MaxBodyBytes.
func ReadBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, BadRequest(ReasonCannotParse, "reading the request body: %v", err)
	}
	if len(b) > MaxBodyBytes {
		return nil, BadRequest(ReasonCannotParse, "request body is larger than %d bytes", MaxBodyBytes)
	}
	return b, nil
}

// Decode strictly decodes a JSON object body into v: unknown members,
// trailing data and wrong types are ValidationExceptions naming the member.
// An empty body decodes as {}.
func Decode(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "body"
			}
			return &Error{Type: TypeValidation, Status: http.StatusBadRequest, Reason: ReasonCannotParse,
				Message: fmt.Sprintf("%s: expected %s, got JSON %s", field, jsonKind(te.Type.String()), te.Value),
				Fields:  fieldList(field, fmt.Sprintf("expected %s, got JSON %s", jsonKind(te.Type.String()), te.Value))}
		case errors.As(err, &se):
			return BadRequest(ReasonCannotParse, "request body is not valid JSON: %v (at byte %d)", err, se.Offset)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			e := Invalid(name, "is not a member of this operation's input")
			e.Reason = ReasonCannotParse
			return e
		default:
			return BadRequest(ReasonCannotParse, "request body is not a valid JSON object: %v", err)
		}
	}
	if dec.More() {
		return BadRequest(ReasonCannotParse, "request body has data after the JSON object")
	}
	var rest json.RawMessage
	if err := dec.Decode(&rest); err != io.EOF {
		return BadRequest(ReasonCannotParse, "request body has data after the JSON object")
	}
	return nil
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "*int"):
		return "an integer"
	case goType == "string", goType == "*string":
		return "a string"
	case goType == "bool", goType == "*bool":
		return "a boolean"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map"):
		return "an object"
	}
	return "an object"
}

func fieldList(name, msg string) []model.FieldError {
	return []model.FieldError{{Name: name, Message: msg}}
}

// WriteJSON writes a JSON success response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if v == nil {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own response types reach here; a failure is a bug.
		http.Error(w, `{"message":"encoding the response failed"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteError writes e in the restJson1 error form the AWS SDKs parse.
func WriteError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("x-amzn-ErrorType", e.Type)
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	WriteJSON(w, e.Status, body{
		Message: e.Message, Reason: e.Reason, FieldList: e.Fields, ResourceID: e.ResourceID,
		ResourceType: e.ResourceType, ServiceCode: e.ServiceCode, QuotaCode: e.QuotaCode,
	})
}

// Timestamp formats t as the Lattice API does: RFC 3339, UTC, milliseconds.
func Timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// Page tokens are opaque to clients: base64url of the last key returned,
// bound to the listing they came from so a token of one list cannot be
// replayed against another.

// EncodeToken makes a nextToken for listing scope, continuing after key.
func EncodeToken(scope, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(scope + "\x00" + key))
}

// DecodeToken returns the key a nextToken continues after, checking that it
// belongs to scope.
func DecodeToken(scope, token string) (string, error) {
	if len(token) < 1 || len(token) > 2048 {
		return "", Invalid("nextToken", "must be 1 to 2048 characters long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", Invalid("nextToken", "is not a token returned by this operation")
	}
	s, key, ok := strings.Cut(string(raw), "\x00")
	if !ok || s != scope {
		return "", Invalid("nextToken", "is not a token returned by this operation")
	}
	return key, nil
}
