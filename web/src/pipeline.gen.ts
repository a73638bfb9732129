// Generated from broker.Snapshot and broker.ParkedMessage by web/types_test.go: do not edit.
// ZIPQ_UPDATE_TYPES=1 go test -run TestPipelineTypesMatchGo ./web rewrites it.

export interface ParkedMessage {
  id: string;
  head: string;
  reason: string;
  error?: string;
  parkedAt?: string;
  bytes: number;
  replays?: number;
}

export interface Snapshot {
  queue: string;
  queueType?: string;
  warning?: string;
  messages: number;
  consumers: number;
  parkedQueue: string;
  parked: number;
  parkedSample?: ParkedMessage[];
  parkedSampleAt?: string;
  receivedPerSecond: number | null;
  storedPerSecond: number | null;
  drainPerSecond: number | null;
  drainSeconds: number | null;
  tenant?: string;
  limitSpansPerSecond?: number;
  limitBytesPerSecond?: number;
  retentionHours?: number;
  maxTraceSpans?: number;
  storageBytes?: number;
  storageBudgetBytes?: number;
  oldestDay?: string;
  overBudget?: boolean;
  tenantBytes?: number;
  tenantBudgetBytes?: number;
  tenantOldestDay?: string;
  tenantOverBudget?: boolean;
  dictionary?: number;
  dictionaryGain?: number;
}

