// Package testenv gives each integration test its own PostgreSQL schema and
// its own RabbitMQ queue on the real servers, cleaned up when the test ends,
// so tests run in parallel on a server that is not empty. A server that does
// not answer fails the test: `make test` starts them, so a missing service
// is a broken environment, not a reason to skip.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/zipq/zipq/storage"
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// PostgresURL is ZIPQ_TEST_POSTGRES_URL or the local default.
func PostgresURL() string {
	return envOr("ZIPQ_TEST_POSTGRES_URL", "postgres://postgres:postgres@127.0.0.1:5432/test?sslmode=disable")
}

// AMQPURL is ZIPQ_TEST_AMQP_URL or the local default.
func AMQPURL() string { return envOr("ZIPQ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/") }

// ID is a short random name part, unique across parallel tests and runs.
func ID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

const schemaPrefix = "zipq_t_"

var sweepOnce sync.Once

// EmptySchema creates a fresh, unmigrated schema and returns a connection
// string whose search_path points at it. The schema is dropped when the
// test ends. Schemas an interrupted run left behind are dropped once per
// process when older than an hour (their name holds their creation time).
func EmptySchema(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, PostgresURL())
	if err != nil {
		t.Fatalf("testenv: PostgreSQL at %s is not answering (run `make services`): %v", PostgresURL(), err)
	}
	defer conn.Close(ctx)
	sweepOnce.Do(func() { sweepSchemas(ctx, conn) })
	name := fmt.Sprintf("%s%d_%s", schemaPrefix, time.Now().Unix(), ID())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("testenv: create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), PostgresURL())
		if err != nil {
			t.Errorf("testenv: drop schema %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("testenv: drop schema %s: %v", name, err)
		}
	})
	return WithSearchPath(PostgresURL(), name)
}

// Schema creates a fresh schema (EmptySchema), migrates it and creates
// today's partitions, and returns a connection string whose search_path
// points at it.
func Schema(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	dsn := EmptySchema(t)
	st, err := storage.Open(ctx, storage.Config{URL: dsn, MaxConns: 2}, nil)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := st.Maintain(ctx, time.Now()); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dsn
}

// WithSearchPath adds search_path to a URL-form connection string.
func WithSearchPath(dsn, schema string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func sweepSchemas(ctx context.Context, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'zipq\_t\_%'`)
	if err != nil {
		return
	}
	names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, n := range names {
		parts := strings.SplitN(strings.TrimPrefix(n, schemaPrefix), "_", 2)
		created, err := strconv.ParseInt(parts[0], 10, 64)
		if err == nil && time.Since(time.Unix(created, 0)) > time.Hour {
			_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{n}.Sanitize()+" CASCADE")
		}
	}
}

// Queue returns a queue name unique to the test (zipkin.test.<id>) and
// deletes that queue and its parking queue when the test ends. The
// collector under test declares them, as it does in production.
func Queue(t testing.TB) string {
	t.Helper()
	conn := Dial(t)
	conn.Close()
	name := "zipkin.test." + ID()
	DeleteQueues(t, name)
	return name
}

// DeleteQueues deletes these span queues, with their parking and poison
// queues, from the test broker's default vhost when the test ends: the
// ones Queue names, and those a test's zipq declares beside it (a
// tenant's).
func DeleteQueues(t testing.TB, names ...string) {
	t.Cleanup(func() {
		c, err := amqp.Dial(AMQPURL())
		if err != nil {
			t.Errorf("testenv: delete queues %v: %v", names, err)
			return
		}
		defer c.Close()
		// The collector under test may have declared the poison queue its
		// delivery-limit policy dead-letters to (broker.Config.PoisonQueue).
		for _, name := range names {
			for _, q := range []string{name, name + ".parked", name + ".poison"} {
				ch, err := c.Channel()
				if err != nil {
					t.Errorf("testenv: %v", err)
					return
				}
				_, _ = ch.QueueDelete(q, false, false, false)
				_ = ch.Close()
			}
		}
	})
}

// Dial connects to RabbitMQ, failing the test when it does not answer. The
// connection is closed at cleanup.
func Dial(t testing.TB) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(AMQPURL())
	if err != nil {
		t.Fatalf("testenv: RabbitMQ at %s is not answering (run `make services`): %v", AMQPURL(), err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// VerifyNoLeaks runs the package's tests and then fails if any goroutine
// outlived them. Every package's TestMain calls it.
// Extra options name known third-party leaks, each with its reason.
func VerifyNoLeaks(m *testing.M, extra ...goleak.Option) {
	goleak.VerifyTestMain(m, append(extra,
		// pgx's pool closes its health-check goroutine asynchronously.
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
	)...)
}
