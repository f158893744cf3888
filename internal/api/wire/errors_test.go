package wire

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// An unexpected error becomes InternalServerException without its detail.
func TestInternalErrorHidesDetail(t *testing.T) {
	e, internal := AsError(errors.New("bolt: page 42 corrupt at /secret/path"), "req-1")
	if !internal || e.Type != TypeInternal || e.Status != 500 {
		t.Fatalf("AsError = %+v, %v", e, internal)
	}
	w := httptest.NewRecorder()
	WriteError(w, e)
	body := w.Body.String()
	if w.Code != 500 || w.Header().Get("x-amzn-ErrorType") != TypeInternal || w.Header().Get("Retry-After") != "1" {
		t.Errorf("response %d %v", w.Code, w.Header())
	}
	if strings.Contains(body, "secret") || !strings.Contains(body, "req-1") {
		t.Errorf("body %s leaks the detail or lacks the request id", body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil || m["message"] == nil {
		t.Errorf("body %s is not a JSON object with a message", body)
	}
}

func TestThrottledShape(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, Throttled(3, "slow down"))
	if w.Code != 429 || w.Header().Get("Retry-After") != "3" || w.Header().Get("x-amzn-ErrorType") != TypeThrottling {
		t.Errorf("response %d %v", w.Code, w.Header())
	}
}
