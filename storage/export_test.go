package storage

// KeyForTest exposes key to external tests.
func KeyForTest(kind byte, s string) int32 { return key(kind, s) }
