package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/faultline/faultline/reports"
)

// indexHandler serves the results folder, with the run index at / built
// afresh on every request so that new runs show up on reload.
func indexHandler(root string) http.Handler {
	files := http.FileServer(http.Dir(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" && r.URL.Path != "/index.html" {
			files.ServeHTTP(w, r)
			return
		}
		var buf bytes.Buffer
		if err := reports.WriteIndex(&buf, root); err != nil {
			http.Error(w, fmt.Sprintf("listing %s: %v", root, err), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(buf.Bytes())
	})
}

func serveCmd(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("faultline serve", flag.ContinueOnError)
	root := fs.String("results", "results", "results folder to list")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	if fs.NArg() > 0 {
		return exitError, fmt.Errorf("unexpected argument %q: faultline serve takes only flags", fs.Arg(0))
	}
	if fi, err := os.Stat(*root); err != nil || !fi.IsDir() {
		return exitError, fmt.Errorf("--results %s is not a folder: run a test first (make test-cluster) or point --results at one", *root)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return exitError, fmt.Errorf("--addr %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: indexHandler(*root), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "faultline: serving %s at http://%s/ (Ctrl-C stops)\n", *root, ln.Addr())
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return exitError, err
	}
	return exitValid, nil
}
