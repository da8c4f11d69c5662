package tracing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/safedelete/uploads/internal/config"
	"github.com/safedelete/uploads/internal/testenv"
	"github.com/safedelete/uploads/internal/tracing"
)

// TestJaeger sends the traces of a REST delete and a GraphQL delete to a
// real collector over OTLP, as the service does from the OTEL_* variables,
// and finds each through Jaeger's query API, whole: the HTTP span, the
// resolver, SQL, S3's DeleteObject and the purge. CI starts Jaeger and sets
// TEST_JAEGER_QUERY_URL and OTEL_EXPORTER_OTLP_ENDPOINT; without the
// former the test skips.
func TestJaeger(t *testing.T) {
	queryURL := os.Getenv("TEST_JAEGER_QUERY_URL")
	if queryURL == "" {
		t.Skip("TEST_JAEGER_QUERY_URL is not set (CI starts Jaeger and sets it)")
	}
	service := fmt.Sprintf("uploads-test-%d", time.Now().UnixNano())
	t.Setenv("OTEL_SERVICE_NAME", service)
	if !tracing.Enabled(os.LookupEnv) {
		t.Fatal("OTEL_EXPORTER_OTLP_ENDPOINT is not set: the service would send no traces")
	}
	provider, err := tracing.Start(context.Background(), os.LookupEnv, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	env := testenv.New(t, testenv.Options{Configure: func(cfg *config.Config) { cfg.TracerProvider = provider }})
	_, apiKey := env.NewUser()

	restUpload := env.MustUpload(apiKey, "rest.txt", []byte("rest"))
	if res := env.DeleteREST(apiKey, restUpload.ID); res.Status != http.StatusOK {
		t.Fatalf("REST delete: %d %s", res.Status, res.Body)
	}
	graphQLUpload := env.MustUpload(apiKey, "graphql.txt", []byte("graphql"))
	res := env.GraphQL(apiKey, `mutation($id: ID!) { deleteUpload(id: $id) { deletedUploadId } }`, map[string]any{"id": graphQLUpload.ID})
	if len(res.Errors) > 0 {
		t.Fatalf("GraphQL delete: %v", res.Errors)
	}

	want := []string{"Mutation.deleteUpload", "sql ", "S3.DeleteObject", "purge"}
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		_ = provider.ForceFlush(context.Background())
		traces, err := jaegerTraces(queryURL, service)
		if err != nil {
			last = err.Error()
			continue
		}
		found := map[string]bool{}
		for _, operations := range traces {
			for _, root := range []string{"DELETE /delete-upload-api", "POST /graphql"} {
				if hasAll(operations, append([]string{root}, want...)) {
					found[root] = true
				}
			}
		}
		if found["DELETE /delete-upload-api"] && found["POST /graphql"] {
			return
		}
		last = fmt.Sprintf("traces of %s in Jaeger: %v", service, traces)
	}
	t.Fatalf("Jaeger has no whole trace of each delete (want the HTTP span and %q): %s", want, last)
}

// jaegerTraces returns the operations of each trace of service that
// Jaeger's HTTP query API (/api/traces) has.
func jaegerTraces(queryURL, service string) ([][]string, error) {
	res, err := http.Get(strings.TrimRight(queryURL, "/") + "/api/traces?limit=100&service=" + url.QueryEscape(service))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("Jaeger answered %s", res.Status)
	}
	var body struct {
		Data []struct {
			Spans []struct {
				OperationName string `json:"operationName"`
			} `json:"spans"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil, err
	}
	var traces [][]string
	for _, tr := range body.Data {
		var operations []string
		for _, s := range tr.Spans {
			operations = append(operations, s.OperationName)
		}
		traces = append(traces, operations)
	}
	return traces, nil
}

func hasAll(operations, prefixes []string) bool {
	for _, p := range prefixes {
		found := false
		for _, op := range operations {
			found = found || strings.HasPrefix(op, p)
		}
		if !found {
			return false
		}
	}
	return true
}
