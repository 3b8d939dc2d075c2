import type { Writable } from 'node:stream';

/** What a destination reports once the output is in place. */
export interface SinkResult {
  /** Human-readable location: `-`, a file path or `s3://bucket/key`. */
  location: string;
  /** S3 only: the object's ETag and the number of parts uploaded (1 for a single PutObject). */
  etag?: string;
  parts?: number;
}

/**
 * A destination with all-or-nothing semantics. The pipeline writes the bytes into `writable`;
 * on success it calls `commit()` (which makes the output appear), on any failure `abort()`
 * (which removes every trace). Only one of the two is called, once.
 */
export interface Sink {
  readonly writable: Writable;
  commit(): Promise<SinkResult>;
  abort(reason: unknown): Promise<void>;
  /** Takes a committed output back, when a later part of the same run failed. */
  remove(): Promise<void>;
  /** Frees what the sink holds (connections); called once when the run is over. */
  release(): Promise<void>;
}
