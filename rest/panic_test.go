package rest_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/safedelete/uploads/graph/model"
	"github.com/safedelete/uploads/rest"
)

type panickingResolver struct{}

func (panickingResolver) DeleteUpload(context.Context, string) (*model.DeleteUploadPayload, error) {
	var m map[string]int
	m["boom"]++ // a nil-map write: a bug, not a failure the resolver returns
	return nil, nil
}

// TestPanicAnswersContract500: a bug in the resolver costs the caller a
// documented 500 body, never a dropped connection, and is logged.
func TestPanicAnswersContract500(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	srv := httptest.NewServer(rest.NewDeleteUploadHandler(panickingResolver{}, slog.New(slog.NewJSONHandler(&logs, nil))))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+rest.Path, nil)
	req.Header.Set("x-upload-id", "upl_00000000000000000000000000000000")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the connection was dropped: %v", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 500 || string(body) != deleteFailed || res.Header.Get("Content-Type") != "application/json" {
		t.Errorf("got %d %q (%s), want 500 %s", res.StatusCode, body, res.Header.Get("Content-Type"), deleteFailed)
	}
	if !strings.Contains(logs.String(), "panic") {
		t.Errorf("the panic was not logged: %s", logs.String())
	}
}
