package testenv

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// ManagementURL is ZIPQ_TEST_RABBIT_MANAGEMENT_URL or the local default.
func ManagementURL() string {
	return envOr("ZIPQ_TEST_RABBIT_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")
}

// VHost creates a RabbitMQ virtual host for one test and returns the AMQP URL
// for it; the vhost and everything in it are deleted when the test ends.
// Its default queue type is quorum, as `make run` sets up vhost "/", so
// the argument-less span queue is a quorum queue whoever declares it.
// Tests of unchanged Zipkin clients need a vhost each: zipkin-go always
// declares and publishes to the fixed names "zipkin", which a shared vhost
// would mix.
func VHost(t testing.TB) string { return vhost(t, "quorum") }

// ClassicVHost is VHost without a default queue type: queues declared
// without arguments are classic, as on a broker nobody set up for zipq.
func ClassicVHost(t testing.TB) string { return vhost(t, "") }

func vhost(t testing.TB, queueType string) string {
	t.Helper()
	name := "zipq-test-" + ID()
	path := "/api/vhosts/" + url.PathEscape(name)
	body := ""
	if queueType != "" {
		// RabbitMQ 3.10–3.12 read "defaultqueuetype", later versions
		// "default_queue_type"; each ignores the other.
		body = `{"defaultqueuetype":"` + queueType + `","default_queue_type":"` + queueType + `"}`
	}
	mgmt(t, http.MethodPut, path, body)
	t.Cleanup(func() {
		if t.Failed() {
			// What the broker still held says whether spans were lost
			// before the queue or stuck after it.
			t.Logf("testenv: queues of vhost %s at the failure: %s", name, mgmt(t, http.MethodGet, "/api/queues/"+url.PathEscape(name)+"?columns=name,type,messages_ready,messages_unacknowledged,consumers", ""))
		}
		mgmt(t, http.MethodDelete, path, "")
	})
	mgmt(t, http.MethodPut, "/api/permissions/"+url.PathEscape(name)+"/guest",
		`{"configure":".*","write":".*","read":".*"}`)
	return amqpURLFor(t, name)
}

// amqpURLFor is the AMQP URL of the test broker with the vhost name.
func amqpURLFor(t testing.TB, vhost string) string {
	t.Helper()
	u, err := url.Parse(AMQPURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + vhost
	return u.String()
}

// mgmt calls the management API and returns the answer's body.
func mgmt(t testing.TB, method, path, body string) string {
	t.Helper()
	u, err := url.Parse(ManagementURL())
	if err != nil {
		t.Fatal(err)
	}
	pass, _ := u.User.Password()
	req, err := http.NewRequest(method, u.Scheme+"://"+u.Host+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(u.User.Username(), pass)
	req.Header.Set("Content-Type", "application/json")
	// No keep-alive: an idle connection would outlive the test (goleak).
	resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatalf("testenv: RabbitMQ management API at %s is not answering (run `make services`): %v", u.Host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		t.Fatalf("testenv: %s %s: %s", method, path, resp.Status)
	}
	return string(b)
}

// Eventually polls cond every 20ms until it holds or timeout passes. It is
// for outcomes of asynchronous pipelines (a span is visible once its batch
// commits), never for timing assertions.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Must fails the test on a non-nil error.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(fmt.Errorf("unexpected: %w", err))
	}
}

// Policy sets a policy on queues in the vhost of amqpURL (a VHost's).
func Policy(t testing.TB, amqpURL, name, pattern, definition string) {
	t.Helper()
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	vhost := strings.TrimPrefix(u.Path, "/")
	mgmt(t, http.MethodPut, "/api/policies/"+url.PathEscape(vhost)+"/"+url.PathEscape(name), fmt.Sprintf(
		`{"pattern":%q,"apply-to":"queues","definition":%s}`, pattern, definition))
}
