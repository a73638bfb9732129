package ingest

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/zipq/zipq/zipkin"
)

// outcome is what an ingest error means to a client, for every transport
// at once: too large (413, RESOURCE_EXHAUSTED; a body over the size limit,
// or a decoder's too_large: too many spans, too much once translated), an encoding zipq does not
// read (415), the queue unavailable (503 with Retry-After, UNAVAILABLE with
// RetryInfo: retry), or invalid input (400, INVALID_ARGUMENT: do not
// retry).
type outcome struct {
	status int
	code   codes.Code
	retry  bool
}

func outcomeOf(err error) outcome {
	switch {
	case errors.Is(err, ErrTooLarge) || zipkin.ReasonOf(err) == zipkin.ReasonTooLarge:
		return outcome{http.StatusRequestEntityTooLarge, codes.ResourceExhausted, false}
	case errors.Is(err, ErrUnsupportedEncoding):
		return outcome{http.StatusUnsupportedMediaType, codes.InvalidArgument, false}
	case errors.Is(err, ErrUnavailable):
		return outcome{http.StatusServiceUnavailable, codes.Unavailable, true}
	case errors.Is(err, ErrBusy):
		return outcome{http.StatusTooManyRequests, codes.Unavailable, true}
	case errors.As(err, new(*LimitedError)):
		return outcome{http.StatusTooManyRequests, codes.ResourceExhausted, true}
	}
	return outcome{http.StatusBadRequest, codes.InvalidArgument, false}
}

// retryAfterSeconds is what a 503 or UNAVAILABLE asks a client to wait.
const retryAfterSeconds = 1

// retryDelay is how long a client told to retry should wait: until its
// tenant's budget allows the request, or retryAfterSeconds.
func retryDelay(err error) time.Duration {
	if l := (*LimitedError)(nil); errors.As(err, &l) {
		return max(l.RetryAfter, time.Second)
	}
	return retryAfterSeconds * time.Second
}

// retryAfter is retryDelay as a Retry-After header value (seconds).
func retryAfter(err error) string {
	return strconv.Itoa(int(retryDelay(err).Round(time.Second) / time.Second))
}

// retryMessage is what a client told to retry reads: why, without the
// broker's error text (which the log has).
func retryMessage(err error) string {
	if errors.Is(err, ErrBusy) {
		return ErrBusy.Error()
	}
	if l := (*LimitedError)(nil); errors.As(err, &l) {
		return l.Error()
	}
	return ErrUnavailable.Error()
}
