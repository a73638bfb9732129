# The UI is bundled by web/build (esbuild's Go API) and embedded by the Go
# build, as `make build` does: Go alone builds the image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go run ./web/build && CGO_ENABLED=0 go build -o /zipq ./cmd/zipq && mkdir /secrets

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /zipq /zipq
# A volume mounted here starts owned by the image's user, so `zipq
# init-secrets` (docker-compose.yml) can write the CA, certificate and
# tokens as nonroot.
COPY --from=build --chown=nonroot:nonroot /secrets /secrets
EXPOSE 9411 4318 4317
ENTRYPOINT ["/zipq"]
