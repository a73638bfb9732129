-- +goose Up
-- minDuration/maxDuration searches come with a service name in Zipkin's UI;
-- this serves them without reading every span of the service.
CREATE INDEX spans_service_duration ON spans (local_service, duration);

-- +goose Down
DROP INDEX spans_service_duration;
