# The UI is built first and embedded by the Go build, as `make build` does.
FROM node:22-bookworm-slim AS ui
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
COPY --from=ui /src/web/dist/ui ./web/dist/ui
RUN CGO_ENABLED=0 go build -o /zipq ./cmd/zipq

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /zipq /zipq
EXPOSE 9411 4318 4317
ENTRYPOINT ["/zipq"]
