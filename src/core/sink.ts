import type { Writable } from 'node:stream';

/** What a destination reports once the output is in place. */
export interface SinkResult {
  /** Human-readable location: `-`, a file path or `s3://bucket/key`. */
  location: string;
  /** S3 only: the object's ETag and the number of parts uploaded (1 for a single PutObject). */
  etag?: string;
  parts?: number;
  /** The published version, for conditional writes later (S3 ETag; a file's size and mtime). */
  version?: string;
}

/**
 * One output of a run, written in two phases (the run's commit protocol, src/commit/commit.ts):
 *
 * 1. The pipeline writes every byte into `writable`; the output is then *staged*: complete, and
 *    still invisible to readers (a temp file beside the target, or an S3 upload whose final
 *    request is held back).
 * 2. `publish()` makes it appear (rename, or release the held request); `discard()` throws it
 *    away and leaves the destination as it was.
 *
 * Only the run's commit owner calls `publish()` or `discard()`; `discard()` may be called more
 * than once and after a failed `publish()`, and is a no-op once published.
 */
export interface StagedSink {
  /** Where the output will appear: `-`, a file path or `s3://bucket/key`. */
  readonly location: string;
  readonly writable: Writable;
  /**
   * Settles once the writable finished and the output is held unseen, or rejects when staging
   * failed (an S3 part that could not be uploaded, a full disk).
   */
  readonly staged: Promise<void>;
  publish(): Promise<SinkResult>;
  discard(reason: unknown): Promise<void>;
  /**
   * The last resort when the process must exit now (a second Ctrl+C): send whatever cleanup
   * has to reach the destination (S3: AbortMultipartUpload) without waiting for the work in
   * flight, as `discard()` does.
   */
  abandon?(): Promise<void>;
}
