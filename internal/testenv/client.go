package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/safedelete/uploads/ent"
	"github.com/safedelete/uploads/internal/oidc"
)

// Response is what an HTTP caller received.
type Response struct {
	Request *http.Request
	Status  int
	Header  http.Header
	Body    string
}

// httpClient gives up on an answer after a minute, far past anything the
// service should take: a handler that never answers (a bug, or a planted
// mutant that loops) fails its test instead of the package's timeout.
var httpClient = &http.Client{Timeout: time.Minute}

// Do sends a request to the service and reads the whole response.
func (e *Env) Do(method, path string, header http.Header, body io.Reader) Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := httpClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return Response{Request: req, Status: res.StatusCode, Header: res.Header, Body: string(b)}
}

// setCredential sends credential as a frontend would: an API key in
// x-api-key, an access token (a JWT: three dot-separated parts) as
// Authorization: Bearer; none when empty.
func setCredential(h http.Header, credential string) {
	switch {
	case credential == "":
	case oidc.LooksLikeJWT(credential):
		h.Set("Authorization", "Bearer "+credential)
	default:
		h.Set("x-api-key", credential)
	}
}

// DeleteREST calls DELETE /delete-upload-api with the given key and upload
// id; an empty string leaves that header out.
func (e *Env) DeleteREST(apiKey, uploadID string) Response {
	e.t.Helper()
	h := http.Header{}
	setCredential(h, apiKey)
	if uploadID != "" {
		h.Set("x-upload-id", uploadID)
	}
	return e.Do(http.MethodDelete, "/delete-upload-api", h, nil)
}

// GraphQLError is one entry of a GraphQL response's errors.
type GraphQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code is the error's extensions.code.
func (g GraphQLError) Code() string {
	code, _ := g.Extensions["code"].(string)
	return code
}

// GraphQLResponse is a decoded GraphQL response.
type GraphQLResponse struct {
	Status int             `json:"-"`
	Data   json.RawMessage `json:"data"`
	Errors []GraphQLError  `json:"errors"`
}

// Decode unmarshals Data into v.
func (g GraphQLResponse) Decode(v any) error { return json.Unmarshal(g.Data, v) }

// GraphQL posts an operation with the key in x-api-key (none when empty).
func (e *Env) GraphQL(apiKey, query string, variables map[string]any) GraphQLResponse {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": variables})
	h := http.Header{"Content-Type": {"application/json"}}
	setCredential(h, apiKey)
	return e.decodeGraphQL(e.Do(http.MethodPost, "/graphql", h, bytes.NewReader(body)))
}

const uploadMutation = `mutation($file: File!) { uploadFile(file: $file) { id filename contentType size status } }`

// UploadFile calls uploadFile as a frontend does, with a GraphQL multipart
// request (https://github.com/jaydenseric/graphql-multipart-request-spec).
func (e *Env) UploadFile(apiKey, filename, contentType string, content []byte) GraphQLResponse {
	e.t.Helper()
	return e.decodeGraphQL(e.UploadFileWith(http.Header{}, "", apiKey, filename, contentType, content))
}

// UploadFileWith is UploadFile with the headers of h besides, and query
// in place of uploadFile's mutation unless empty (its variable $file is
// the file), answered as it came.
func (e *Env) UploadFileWith(h http.Header, query, apiKey, filename, contentType string, content []byte) Response {
	e.t.Helper()
	if query == "" {
		query = uploadMutation
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	ops, _ := json.Marshal(map[string]any{"query": query, "variables": map[string]any{"file": nil}})
	_ = mw.WriteField("operations", string(ops))
	_ = mw.WriteField("map", `{"0": ["variables.file"]}`)
	ph := textproto.MIMEHeader{}
	ph.Set("Content-Disposition", `form-data; name="0"; filename="`+strings.ReplaceAll(filename, `"`, `\"`)+`"`)
	ph.Set("Content-Type", contentType)
	part, _ := mw.CreatePart(ph)
	_, _ = part.Write(content)
	_ = mw.Close()
	h = h.Clone()
	h.Set("Content-Type", mw.FormDataContentType())
	setCredential(h, apiKey)
	return e.Do(http.MethodPost, "/graphql", h, &body)
}

// UploadedFile is the uploadFile payload.
type UploadedFile struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	ContentType string `json:"contentType"`
	Size        int64  `json:"size"`
	Status      string `json:"status"`
}

// MustUpload uploads content and returns the upload's record, failing the
// test unless it is COMPLETED.
func (e *Env) MustUpload(apiKey, filename string, content []byte) *ent.Upload {
	e.t.Helper()
	res := e.UploadFile(apiKey, filename, "text/plain", content)
	var data struct{ UploadFile UploadedFile }
	if len(res.Errors) > 0 || res.Decode(&data) != nil || data.UploadFile.Status != "COMPLETED" {
		e.t.Fatalf("upload failed: status %d, errors %+v, data %s", res.Status, res.Errors, res.Data)
	}
	u, err := e.Client().Upload.Get(context.Background(), data.UploadFile.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

func (e *Env) decodeGraphQL(res Response) GraphQLResponse {
	e.t.Helper()
	var g GraphQLResponse
	if err := json.Unmarshal([]byte(res.Body), &g); err != nil {
		e.t.Fatalf("decode GraphQL response (status %d): %v\n%s", res.Status, err, res.Body)
	}
	g.Status = res.Status
	return g
}
