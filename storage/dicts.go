package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/dict"
	"github.com/klauspost/compress/zstd"
)

// Dictionaries learned from the deployment's own segments. The shipped
// dictionary (dict/v1.zdict) was trained on the benchmark's generator, and
// traffic unlike it compresses worse (issue 25: ~256 bytes a span on spans
// it did not make). So maintenance trains one from the newest segments
// once enough are stored, keeps it only if it compresses held-out
// segments at least dictGain better than the dictionary in use, and tries
// again daily (the traffic drifts). Dictionaries live in zstd_dicts with
// their ids and are never deleted: a segment's frame names its dictionary,
// and every process's decoder knows all of them.
//
// A dictionary is used to write only dictGrace after it was trained:
// every process reloads them each dictRefresh, so by then all of them can
// read what it compresses.
const (
	dictGrace   = 10 * time.Minute
	dictRefresh = time.Minute
	dictRetrain = 24 * time.Hour
	dictGain    = 0.95 // a new dictionary must make held-out segments at most this size
	// dictSampleBytes bounds a training's memory: klauspost's trainer
	// peaked at about 30 MiB of heap per MiB of samples (59 MiB for 2 MiB,
	// 195 MiB for 8; the collector's limit in deploy/ is 384 MiB).
	dictSampleBytes = 2 << 20   // uncompressed segment bytes a training reads, at most
	dictMinSample   = 512 << 10 // and at least: fewer say nothing of the traffic
	dictMaxSize     = 112 << 10 // zstd's default dictionary size
)

// dictionaries are every dictionary any store of the process loaded (zstd
// dictionary ids are random 32-bit numbers, so schemas do not collide) and
// the shipped one; learnedDecoder knows them all (nil: none learned yet).
// Reads load the decoder without a lock: it is on every segment read.
var (
	dictionaries struct {
		sync.Mutex
		known map[uint32][]byte
	}
	learnedDecoder atomic.Pointer[zstd.Decoder]
)

// decoder is the process's decoder.
func decoder() (*zstd.Decoder, error) {
	if dec := learnedDecoder.Load(); dec != nil {
		return dec, nil
	}
	_, dec, err := codec()
	return dec, err
}

// newDecoder is a decoder of segments compressed with any of dicts.
func newDecoder(dicts ...[]byte) (*zstd.Decoder, error) {
	return decoderOf(0, dicts)
}

// decoderOf is a decoder of dicts with concurrency goroutines (0: one a
// core, DecodeAll's; 1: streams decoded in the caller). The frame header
// names its dictionary; a frame without one decodes without. Both kinds
// are made here so that one never reads a frame the other refuses.
func decoderOf(concurrency int, dicts [][]byte) (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderDicts(dicts...), zstd.WithDecoderConcurrency(concurrency), zstd.WithDecoderMaxMemory(1<<30))
}

// A streamDecoder decodes a prefix of a frame (decompressPrefix). It
// knows every dictionary the process knew when it was made; of is the
// process's decoder then, and a pooled one made before the process
// learned a dictionary is replaced.
type streamDecoder struct {
	of  *zstd.Decoder
	dec *zstd.Decoder
}

var streamDecoders sync.Pool

// newStreamDecoder is a stream decoder of every dictionary known, that
// decodes in the calling goroutine (concurrency 1: no goroutines to
// leak from a pool).
func newStreamDecoder() (*zstd.Decoder, error) {
	dictionaries.Lock()
	all := knownDicts()
	dictionaries.Unlock()
	return decoderOf(1, all)
}

// knownDicts is every dictionary known, the shipped one first; the
// caller holds dictionaries' lock.
func knownDicts() [][]byte {
	all := [][]byte{dictV1}
	for id, d := range dictionaries.known {
		if id != zstdDictID(dictV1) {
			all = append(all, d)
		}
	}
	return all
}

// learnDicts adds dictionaries to the process's decoder.
func learnDicts(dicts [][]byte) error {
	dictionaries.Lock()
	defer dictionaries.Unlock()
	if dictionaries.known == nil {
		dictionaries.known = map[uint32][]byte{zstdDictID(dictV1): dictV1}
	}
	added := false
	for _, d := range dicts {
		if id := zstdDictID(d); dictionaries.known[id] == nil {
			dictionaries.known[id], added = d, true
		}
	}
	if !added {
		return nil
	}
	dec, err := newDecoder(knownDicts()...)
	if err != nil {
		return fmt.Errorf("dictionaries: %w", err)
	}
	learnedDecoder.Store(dec) // the old one is left to the garbage collector: reads may be using it
	return nil
}

// zstdDictID is the id a zstd dictionary names itself by (0: not one).
func zstdDictID(d []byte) uint32 {
	if len(d) < 8 || !bytes.Equal(d[:4], []byte{0x37, 0xa4, 0x30, 0xec}) {
		return 0
	}
	return binary.LittleEndian.Uint32(d[4:8])
}

// segmentCodec is the encoder a store writes new segments with and the
// zstd_dicts id it records for them.
type segmentCodec struct {
	enc *zstd.Encoder
	id  int16
}

// newEncoder is an encoder of the kind segments are written with.
func newEncoder(d []byte) (*zstd.Encoder, error) {
	// The fastest level: with a dictionary it compresses nearly as well as
	// the slower ones at a fraction of their CPU (docs/BENCHMARKS.md).
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderDict(d),
		zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
}

// segmentCodec is what the store writes with: the newest dictionary past
// its grace, else the shipped one.
func (s *Store) segmentCodec() (*segmentCodec, error) {
	if c := s.codec.Load(); c != nil {
		return c, nil
	}
	enc, _, err := codec()
	if err != nil {
		return nil, err
	}
	return &segmentCodec{enc: enc, id: currentDict}, nil
}

// LoadDicts reads the schema's dictionaries into the process's decoder and
// picks the one to write with.
func (s *Store) LoadDicts(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, `SELECT id, dict, trained_at FROM zstd_dicts ORDER BY id`)
	if err != nil {
		return fmt.Errorf("load dictionaries: %w", err)
	}
	type row struct {
		id      int16
		dict    []byte
		trained time.Time
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.dict, &x.trained)
	})
	if err != nil {
		return fmt.Errorf("load dictionaries: %w", err)
	}
	dicts := make([][]byte, len(all))
	for i, r := range all {
		dicts[i] = r.dict
	}
	if err := learnDicts(dicts); err != nil {
		return err
	}
	for _, r := range slices.Backward(all) {
		if time.Since(r.trained) < dictGrace {
			continue
		}
		if c := s.codec.Load(); c != nil && c.id == r.id {
			return nil
		}
		enc, err := newEncoder(r.dict)
		if err != nil {
			return fmt.Errorf("dictionary %d: %w", r.id, err)
		}
		s.codec.Store(&segmentCodec{enc: enc, id: r.id})
		s.logger.Info("writing segments with a learned dictionary", slog.Int("dict", int(r.id)))
		return nil
	}
	return nil
}

// RunDicts loads the dictionaries now and then every dictRefresh until ctx
// ends, so a dictionary another process trained is readable here before
// anyone writes with it.
func (s *Store) RunDicts(ctx context.Context) error {
	return s.every(ctx, dictRefresh, "loading dictionaries", func(ctx context.Context) (bool, error) {
		return false, s.LoadDicts(ctx)
	})
}

// trainDict trains a dictionary from the newest segments when none was
// trained within dictRetrain and enough are stored, and keeps it if it
// beats the one in use on held-out segments. Run by maintenance, under its
// lock.
func (s *Store) trainDict(ctx context.Context, tx pgx.Tx, now time.Time) error {
	var last *time.Time
	if err := tx.QueryRow(ctx, `SELECT max(trained_at) FROM zstd_dicts`).Scan(&last); err != nil {
		return fmt.Errorf("train dictionary: %w", err)
	}
	if last != nil && now.Sub(*last) < dictRetrain {
		return nil
	}
	// Today's segments, a sample of its partition's pages (no index has
	// them by time) sized for about dictSampleBytes once decompressed
	// (they compress about 3:1), every fifth held out to judge the
	// dictionary by. The partition holds every tenant's segments: the
	// dictionary is the installation's, and no API shows its bytes.
	part := pgx.Identifier{partitionName("segments", now.UTC().Truncate(day))}.Sanitize()
	var size int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(pg_table_size(to_regclass($1)), 0)`, part).Scan(&size); err != nil {
		return fmt.Errorf("train dictionary: %w", err)
	}
	if size*3 < dictMinSample {
		return nil
	}
	pct := min(100, 100*float64(dictSampleBytes)/2/float64(size))
	rows, err := tx.Query(ctx, `SELECT data FROM `+part+` TABLESAMPLE SYSTEM ($1)`, pct)
	if err != nil {
		return fmt.Errorf("train dictionary: %w", err)
	}
	dec, err := decoder()
	if err != nil {
		return err
	}
	var train, held [][]byte
	var total int
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&data}, func() error {
		if total >= dictSampleBytes {
			return nil
		}
		raw, err := dec.DecodeAll(data, nil)
		if err != nil {
			return nil // not ours to judge here; reads report it
		}
		total += len(raw)
		if (len(train)+len(held))%5 == 4 {
			held = append(held, raw)
		} else {
			train = append(train, raw)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("train dictionary: %w", err)
	}
	if total < dictMinSample || len(held) == 0 {
		return nil
	}
	cur, err := s.segmentCodec()
	if err != nil {
		return err
	}
	learned, err := dict.BuildZstdDict(train, dict.Options{MaxDictSize: dictMaxSize, HashBytes: 6, ZstdLevel: zstd.SpeedFastest})
	if err != nil {
		s.logger.Info("no dictionary learned", slog.Any("err", err))
		return nil
	}
	enc, err := newEncoder(learned)
	if err != nil {
		return fmt.Errorf("train dictionary: %w", err)
	}
	before, after := compressedSize(cur.enc, held), compressedSize(enc, held)
	raw := 0
	for _, h := range held {
		raw += len(h)
	}
	if float64(after) > dictGain*float64(before) {
		s.logger.Info("learned dictionary not kept: too little gain", slog.Int("held_out_bytes", raw),
			slog.Int("bytes_now", before), slog.Int("bytes_learned", after))
		return nil
	}
	_, err = tx.Exec(ctx, `INSERT INTO zstd_dicts (id, zstd_id, dict, trained_at, sample_bytes, held_out_bytes, bytes_before, bytes_after)
		SELECT greatest(max(id), 1) + 1, $1, $2, $3, $4, $5, $6, $7 FROM zstd_dicts`,
		int64(zstdDictID(learned)), learned, now, total, raw, before, after)
	if err != nil {
		return fmt.Errorf("train dictionary: %w", err)
	}
	s.logger.Info("dictionary learned", slog.Int("sample_bytes", total), slog.Int("held_out_bytes", raw),
		slog.Int("bytes_now", before), slog.Int("bytes_learned", after))
	return learnDicts([][]byte{learned})
}

func compressedSize(enc *zstd.Encoder, samples [][]byte) int {
	n := 0
	var buf []byte
	for _, s := range samples {
		buf = enc.EncodeAll(s, buf[:0])
		n += len(buf)
	}
	return n
}
