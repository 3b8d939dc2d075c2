import { Transform, type TransformCallback } from 'node:stream';
import type { RunStats } from '../core/stats.ts';

export interface CsvOptions {
  /** Prefix cells starting with = + - @ tab or CR with `'` (spreadsheet formula injection). */
  escapeFormulas: boolean;
  /** Header names, in row order. */
  columns: readonly string[];
}

/**
 * A cell needs quotes when it holds the delimiter, a quote or the record delimiter (LF). A lone
 * CR is not quoted: csv-stringify with `record_delimiter: '\n'` does not (its
 * `quote_record_delimiter` is then off), and the bytes stay the ones it wrote.
 */
const NEEDS_QUOTES = /[",\n]/;
/** First characters a spreadsheet reads as a formula (ASCII and their full-width forms). */
const FORMULA_START = new Set([
  '=',
  '+',
  '-',
  '@',
  '\t',
  '\r',
  '\uFF1D',
  '\uFF0B',
  '\uFF0D',
  '\uFF20',
]);

/** One cell: minimal quoting, `"` doubled inside quotes; null/undefined are empty. */
export function csvCell(value: unknown, escapeFormulas: boolean): string {
  if (value === undefined || value === null || value === '') return '';
  let text = typeof value === 'string' ? value : String(value);
  // Quoting is decided on the value as given, as csv-stringify does, before the prefix.
  const quote = NEEDS_QUOTES.test(text);
  if (escapeFormulas && FORMULA_START.has(text[0] as string)) text = `'${text}`;
  return quote ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One record, `\n`-terminated. */
export function csvRecord(row: readonly unknown[], escapeFormulas: boolean): string {
  let line = csvCell(row[0], escapeFormulas);
  for (let i = 1; i < row.length; i++) line += `,${csvCell(row[i], escapeFormulas)}`;
  return `${line}\n`;
}

/**
 * rows → CSV text, byte for byte what csv-stringify writes with `header: true`,
 * `record_delimiter: '\n'` and the given `escape_formulas` (the project used it until the
 * allocation work of bench/README.md; test/csv.golden.test.ts holds the bytes): `,`, `"` doubled
 * inside quotes, quoting only fields with a delimiter, quote or LF, and `\n` after every
 * record including the header — byte for byte what pandas' `to_csv(index=False)` writes. The
 * header comes with the first row, or alone at the end when there is none.
 *
 * Records are encoded straight into one Buffer of {@link COALESCE_BYTES} and more (its own
 * allocation, never Node's shared pool), which is pushed when full: one chunk per 64 KiB for the
 * stages after it instead of one string per row, and no string of many rows to flatten first.
 */
export class CsvSerializer extends Transform {
  readonly #escapeFormulas: boolean;
  #header: string | undefined;
  #buffer: Buffer = Buffer.allocUnsafeSlow(0);
  #used = 0;

  constructor(options: CsvOptions) {
    super({ writableObjectMode: true, writableHighWaterMark: 64 });
    this.#escapeFormulas = options.escapeFormulas;
    this.#header = csvRecord(options.columns, options.escapeFormulas);
  }

  override _transform(
    row: unknown[],
    _encoding: BufferEncoding,
    callback: TransformCallback,
  ): void {
    if (!Array.isArray(row)) {
      callback(new TypeError(`a CSV row must be an array, got ${JSON.stringify(row)}`));
      return;
    }
    if (this.#header !== undefined) {
      this.#write(this.#header);
      this.#header = undefined;
    }
    this.#write(csvRecord(row, this.#escapeFormulas));
    if (this.#used >= COALESCE_BYTES) this.#pushBuffer();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#header !== undefined) this.#write(this.#header);
    if (this.#used > 0) this.#pushBuffer();
    callback();
  }

  #write(text: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8, so this much room always suffices.
    const room = text.length * 3;
    if (this.#buffer.length - this.#used < room) {
      if (this.#used >= COALESCE_BYTES) this.#pushBuffer();
      // Whatever is not pushed yet moves to the new allocation: every chunk but the last is at
      // least COALESCE_BYTES.
      const next = Buffer.allocUnsafeSlow(Math.max(2 * COALESCE_BYTES, this.#used + room));
      this.#buffer.copy(next, 0, 0, this.#used);
      this.#buffer = next;
    }
    this.#used += this.#buffer.write(text, this.#used, 'utf8');
  }

  #pushBuffer(): void {
    // The pushed bytes are a view of this serializer's own allocation (the Coalescer copies
    // them); it writes on after them, so nothing it pushed is ever written again.
    const full = this.#buffer.subarray(0, this.#used);
    this.#buffer = this.#buffer.subarray(this.#used);
    this.#used = 0;
    this.push(full);
  }
}

/** rows → CSV text (see {@link CsvSerializer}). */
export function createCsvStringifier(options: CsvOptions): Transform {
  return new CsvSerializer(options);
}

/** 64 KiB: few, large writes for gzip, the digest and the sinks, instead of one per row. */
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
