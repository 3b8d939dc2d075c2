import { Transform, type TransformCallback } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { RunStats } from '../core/stats.ts';

export interface CsvOptions {
  /** Prefix cells starting with = + - @ tab or CR with `'` (spreadsheet formula injection). */
  escapeFormulas: boolean;
  /** Header names, in row order. */
  columns: readonly string[];
}

/**
 * rows → CSV text. csv-stringify's defaults are the contract: `,`, `"` doubled inside quotes,
 * quoting only fields with a delimiter, quote, CR or LF, and `\n` after every record including
 * the header — byte for byte what pandas' `to_csv(index=False)` writes.
 */
export function createCsvStringifier(options: CsvOptions): Transform {
  return stringify({
    header: true,
    columns: [...options.columns],
    record_delimiter: '\n',
    escape_formulas: options.escapeFormulas,
  });
}

/** 64 KiB: large enough that lib-storage never holds pooled slabs for tiny chunks (aws-sdk-js-v3#8286). */
export const COALESCE_BYTES = 64 * 1024;

/**
 * Many small chunks in, few large Buffers out. Each output Buffer is its own allocation (not a
 * slice of Node's shared pool), so whatever keeps a reference to it keeps only its bytes.
 * Also counts the bytes that leave the serializer.
 */
export class Coalescer extends Transform {
  readonly #size: number;
  readonly #stats: RunStats;
  /** Bytes this instance sent on (the run's stats count all outputs together). */
  bytes = 0;
  #parts: Buffer[] = [];
  #length = 0;

  constructor(stats: RunStats, size = COALESCE_BYTES) {
    super({ writableHighWaterMark: size, readableHighWaterMark: size });
    this.#size = size;
    this.#stats = stats;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#parts.push(chunk);
    this.#length += chunk.length;
    if (this.#length >= this.#size) this.#flushParts();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#length > 0) this.#flushParts();
    callback();
  }

  #flushParts(): void {
    // Buffer.concat allocates outside the pool for sizes above half of Buffer.poolSize.
    const out = Buffer.concat(this.#parts, this.#length);
    this.#stats.bytes += out.length;
    this.bytes += out.length;
    this.#parts = [];
    this.#length = 0;
    this.push(out);
  }
}
