package gqllimit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
)

// MultipartMap checks, before gqlgen reads a GraphQL multipart request
// (https://github.com/jaydenseric/graphql-multipart-request-spec), that
// every path of its map names a place in the operation's variables: a
// member of an object, or an element within a list's length. gqlgen walks
// the paths without that check and panics on a list index out of range or
// a path through a value of the wrong kind.
//
// It reads only the operations and map parts (at most maxPrefix bytes) and
// hands the request on with its body as it was. A request whose map is
// wrong is answered by reject with a message for the caller; one whose
// parts cannot be read is passed on for gqlgen to answer as it does.
func MultipartMap(maxPrefix int64, reject func(w http.ResponseWriter, r *http.Request, message string), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
			next.ServeHTTP(w, r)
			return
		}
		var consumed bytes.Buffer
		parts := multipart.NewReader(io.TeeReader(io.LimitReader(r.Body, maxPrefix), &consumed), params["boundary"])
		problem := checkMap(parts)
		r.Body = replayed{Reader: io.MultiReader(bytes.NewReader(consumed.Bytes()), r.Body), Closer: r.Body}
		if problem != nil {
			reject(w, r, problem.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

type replayed struct {
	io.Reader
	io.Closer
}

// checkMap reads the operations and map parts and returns the first wrong
// path, or nil (also when the parts cannot be read: gqlgen says why).
func checkMap(parts *multipart.Reader) error {
	var operations struct {
		Variables map[string]any `json:"variables"`
	}
	var paths map[string][]string
	if p, err := parts.NextPart(); err != nil || p.FormName() != "operations" || json.NewDecoder(p).Decode(&operations) != nil {
		return nil
	}
	if p, err := parts.NextPart(); err != nil || p.FormName() != "map" || json.NewDecoder(p).Decode(&paths) != nil {
		return nil
	}
	for key, list := range paths {
		for _, path := range list {
			if err := checkPath(operations.Variables, path); err != nil {
				return fmt.Errorf("map entry %q: path %q %w", key, path, err)
			}
		}
	}
	return nil
}

var errNoPlace = errors.New("does not name a variable of the operation")

// checkPath walks path ("variables.files.0") through the variables.
func checkPath(variables map[string]any, path string) error {
	rest, ok := strings.CutPrefix(path, "variables.")
	if !ok || variables == nil {
		return errNoPlace
	}
	var at any = variables
	steps := strings.Split(rest, ".")
	for i, step := range steps {
		last := i == len(steps)-1
		switch v := at.(type) {
		case []any:
			index, err := strconv.Atoi(step)
			if err != nil || index < 0 || index >= len(v) {
				return errNoPlace
			}
			at = v[index]
		case map[string]any:
			if _, err := strconv.Atoi(step); err == nil {
				return errNoPlace // gqlgen reads a number as a list index
			}
			member, found := v[step]
			if !found && !last {
				return errNoPlace
			}
			at = member
		default:
			return errNoPlace
		}
	}
	return nil
}
