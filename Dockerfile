# The UI is bundled by web/build (esbuild's Go API) and embedded by the Go
# build, as `make build` does: Go alone builds the image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go run ./web/build && CGO_ENABLED=0 go build -o /zipq ./cmd/zipq

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /zipq /zipq
EXPOSE 9411 4318 4317
ENTRYPOINT ["/zipq"]
