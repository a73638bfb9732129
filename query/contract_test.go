package query_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"gopkg.in/yaml.v3"
)

// The contract is Zipkin's own API definition, copied unchanged from
// ../shared/zipkin-api (TestSpecIsZipkins checks the copy when that
// folder is present).
const specFile = "testdata/zipkin2-api.yaml"

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

func loadSpec() (routers.Router, error) {
	specOnce.Do(func() {
		raw, err := os.ReadFile(specFile)
		if err != nil {
			specErr = err
			return
		}
		var tree map[string]any
		if specErr = yaml.Unmarshal(raw, &tree); specErr != nil {
			return
		}
		js, err := json.Marshal(tree)
		if err != nil {
			specErr = err
			return
		}
		var doc2 openapi2.T
		if specErr = json.Unmarshal(js, &doc2); specErr != nil {
			return
		}
		doc3, err := openapi2conv.ToV3(&doc2)
		if err != nil {
			specErr = err
			return
		}
		// The spec types GET /spans as a list of Span objects, but describes
		// it as "all the span names recorded by a service", and the Zipkin
		// server, its UI and every client return and expect a list of
		// strings. zipq does what the server does; only this one schema is
		// corrected here.
		names := openapi3.NewArraySchema().WithItems(openapi3.NewStringSchema())
		doc3.Paths.Find("/spans").Get.Responses.Status(200).Value.Content["application/json"].Schema = names.NewRef()
		doc3.Servers = openapi3.Servers{{URL: "http://example.com/api/v2"}}
		specRouter, specErr = legacy.NewRouter(doc3)
	})
	return specRouter, specErr
}

// notInSpec are Zipkin server endpoints its API definition does not list.
var notInSpec = map[string]bool{"/api/v2/remoteServices": true}

// checkContract validates one API response against the spec. Responses of
// paths outside /api/v2 and statuses the spec leaves undeclared (400, 503)
// are not constrained by it.
func checkContract(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	if err := contractError(req, rec); err != nil {
		t.Errorf("%s %s → %d violates the Zipkin API spec: %v\nbody: %.300s", req.Method, req.URL, rec.Code, err, rec.Body.String())
	}
}

func contractError(req *http.Request, rec *httptest.ResponseRecorder) error {
	if !strings.HasPrefix(req.URL.Path, "/api/v2/") {
		return nil
	}
	router, err := loadSpec()
	if err != nil {
		return fmt.Errorf("load %s: %w", specFile, err)
	}
	r := req.Clone(req.Context())
	r.Host, r.URL.Host, r.URL.Scheme = "example.com", "example.com", "http"
	route, params, err := router.FindRoute(r)
	if err != nil && notInSpec[req.URL.Path] {
		return nil
	}
	if err != nil {
		return fmt.Errorf("not in the spec: %w", err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
			Options: &openapi3filter.Options{ExcludeRequestBody: true}},
		Status: rec.Code,
		Header: rec.Header(),
		Body:   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
	}
	return openapi3filter.ValidateResponse(req.Context(), in)
}

// TestContractCatchesViolations proves the check can fail.
func TestContractCatchesViolations(t *testing.T) {
	for target, body := range map[string]string{
		"/api/v2/trace/000000000000000a": `[{"traceId":"NOT-HEX","id":"000000000000000a"}]`,
		"/api/v2/traces":                 `[{"traceId":"000000000000000a"}]`,
		"/api/v2/services":               `[1]`,
		"/api/v2/dependencies?endTs=1":   `[{"parent":"a"}]`,
	} {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Type", "application/json")
		rec.WriteHeader(200)
		_, _ = rec.WriteString(body) // a recorder never fails
		if err := contractError(httptest.NewRequest(http.MethodGet, target, nil), rec); err == nil {
			t.Errorf("%s %s passed the contract", target, body)
		}
	}
}

func TestSpecIsZipkins(t *testing.T) {
	shared, err := os.ReadFile("../../shared/zipkin-api/zipkin2-api.yaml")
	if os.IsNotExist(err) {
		t.Log("../shared is not beside this checkout; checking the copy only")
	} else if err != nil {
		t.Fatal(err)
	} else if copied, _ := os.ReadFile(specFile); !bytes.Equal(shared, copied) {
		t.Fatalf("%s differs from ../shared/zipkin-api/zipkin2-api.yaml: copy it again", specFile)
	}
	if _, err := loadSpec(); err != nil {
		t.Fatal(err)
	}
}
