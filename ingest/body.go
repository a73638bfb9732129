package ingest

// Request bodies of the HTTP edges (Zipkin's POST /api/v2/spans and OTLP's
// POST /v1/traces), read within a size limit that holds before and after
// gunzip.

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrTooLarge is a body over the limit, compressed or not (413).
var ErrTooLarge = errors.New("body too large")

// ErrUnsupportedEncoding is a Content-Encoding zipq does not decode (415):
// refused rather than read as if it were plain, which would turn a
// compressed body into a 400 and a mislabelled plain one into a 202.
var ErrUnsupportedEncoding = errors.New("unsupported Content-Encoding: send gzip or none")

// readBody reads at most limit bytes, gunzipping when the client says so
// (Content-Encoding: gzip or x-gzip); the limit applies before and after
// inflating, so a small gzip bomb gets ErrTooLarge rather than the heap.
// Any other encoding is ErrUnsupportedEncoding. Other errors are the
// client's malformed body (400).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	in := http.MaxBytesReader(w, r.Body, limit)
	b, err := read(in, r.Header.Get("Content-Encoding"), limit)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return b, err
}

func read(in io.Reader, encoding string, limit int64) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "", "identity":
		return io.ReadAll(in)
	case "gzip", "x-gzip":
	default:
		return nil, fmt.Errorf("%w (got %.40q)", ErrUnsupportedEncoding, encoding)
	}
	zr, err := gzip.NewReader(in)
	if err != nil {
		return nil, fmt.Errorf("cannot gunzip body: %w", err)
	}
	defer zr.Close()
	b, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot gunzip body: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes after gunzip", ErrTooLarge, limit)
	}
	return b, nil
}

// bodySize is what a request's body may take once read: its declared
// length when plain and declared, else the largest body allowed.
func bodySize(r *http.Request, limit int64) int64 {
	if r.ContentLength > 0 && r.Header.Get("Content-Encoding") == "" {
		return min(r.ContentLength, limit)
	}
	return limit
}
