module github.com/zipq/zipq

go 1.26.8

require (
	github.com/openzipkin/zipkin-go v0.4.3
	go.uber.org/goleak v1.3.0
	google.golang.org/protobuf v1.36.12
)

require github.com/stretchr/testify v1.12.1 // indirect
