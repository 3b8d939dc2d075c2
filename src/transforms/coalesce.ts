import { Transform, type TransformCallback } from 'node:stream';
import type { RunStats } from '../core/stats.ts';

/** 64 KiB: few, large writes for gzip, the digest and the sinks, instead of one per row. */
export const COALESCE_BYTES = 64 * 1024;

/**
 * Room past `size` in each allocation, so a chunk is cut on the first write that reaches
 * `size` instead of on one that would not fit: rows are far smaller than this.
 */
const SLACK = 8 * 1024;

/**
 * A serializer's output → Buffers of at least `size` bytes (the last may be smaller), each its
 * own allocation outside Node's Buffer pool: whatever keeps a chunk (a multipart part, a queued
 * write) keeps only its own bytes, never a pool slab shared with later rows (aws-sdk-js-v3
 * issue 8286). Strings (CSV and NDJSON records) are encoded straight into that allocation, one
 * UTF-8 encode per record and no Buffer per row; bytes (Parquet's row groups) are copied in, or
 * passed on as they are when they already are a large allocation of their own. Counts the bytes
 * it sends on.
 */
export class Coalescer extends Transform {
  readonly #size: number;
  readonly #stats: RunStats;
  /** Bytes this instance sent on (the run's stats count all outputs together). */
  bytes = 0;
  #buffer: Buffer = Buffer.allocUnsafeSlow(0);
  #used = 0;

  constructor(stats: RunStats, size = COALESCE_BYTES) {
    // Object mode on the writable side keeps strings as strings (no Buffer per record).
    super({ writableObjectMode: true, writableHighWaterMark: 64, readableHighWaterMark: size });
    this.#size = size;
    this.#stats = stats;
  }

  override _transform(
    chunk: string | Uint8Array,
    _encoding: BufferEncoding,
    callback: TransformCallback,
  ): void {
    if (typeof chunk === 'string') {
      // A UTF-16 code unit is at most 3 bytes of UTF-8, so this much room always suffices.
      this.#reserve(chunk.length * 3);
      this.#used += this.#buffer.write(chunk, this.#used, 'utf8');
    } else if (
      this.#used === 0 &&
      chunk.byteLength >= this.#size &&
      chunk.byteLength === chunk.buffer.byteLength
    ) {
      this.#send(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    } else {
      this.#reserve(chunk.byteLength);
      this.#buffer.set(chunk, this.#used);
      this.#used += chunk.byteLength;
    }
    if (this.#used >= this.#size) this.#cut();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#used > 0) this.#cut();
    callback();
  }

  /** Makes room for `bytes` more: a new allocation, with what is pending copied over. */
  #reserve(bytes: number): void {
    if (this.#buffer.length - this.#used >= bytes) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.#size + SLACK, this.#used + bytes));
    this.#buffer.copy(next, 0, 0, this.#used);
    this.#buffer = next;
  }

  /** Sends what is pending; the next write starts a new allocation. */
  #cut(): void {
    const out = this.#buffer.subarray(0, this.#used);
    this.#buffer = Buffer.allocUnsafeSlow(0);
    this.#used = 0;
    this.#send(out);
  }

  #send(out: Buffer): void {
    this.#stats.bytes += out.length;
    this.bytes += out.length;
    this.push(out);
  }
}
