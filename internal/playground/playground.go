// Package playground serves GraphiQL from files inside the binary, so that
// people can explore the API with no CDN and no internet. assets/ is
// vendored from the npm registry by update-assets.sh.
package playground

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed index.html init.js favicon.ico assets/*.js assets/*.css
var files embed.FS

// Handler serves the playground page at /, its scripts and styles under
// /playground/, and its icon at /favicon.ico, where browsers look for it
// unasked (without it, each logs a 404; the page stays free of links
// outside /playground/).
func Handler() http.Handler {
	assets, err := fs.Sub(files, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; font-src 'self' data:; style-src 'self' 'unsafe-inline'")
		http.ServeFileFS(w, r, files, "index.html")
	})
	mux.HandleFunc("GET /playground/init.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, files, "init.js")
	})
	mux.Handle("GET /playground/", http.StripPrefix("/playground/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		// Set here: the type of .ico files is not in Go's built-in table,
		// and the machine's may lack it.
		w.Header().Set("Content-Type", "image/x-icon")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		http.ServeFileFS(w, r, files, "favicon.ico")
	})
	return mux
}
