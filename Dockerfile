FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -o /zipq ./cmd/zipq

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /zipq /zipq
EXPOSE 9411
ENTRYPOINT ["/zipq"]
