import { Transform, type TransformCallback } from 'node:stream';
import type { Row } from './rows.ts';

/**
 * One row as one JSON object line, keys in column order: `{"album_id":"…",…}\n`. The key
 * prefixes are built once, so a row costs one JSON.stringify per value.
 */
export function ndjsonLine(prefixes: readonly string[], row: Row): string {
  let line = '';
  for (let i = 0; i < prefixes.length; i++) line += prefixes[i] + JSON.stringify(row[i] ?? '');
  return `${line}}\n`;
}

export function ndjsonPrefixes(columns: readonly string[]): string[] {
  return columns.map((column, i) => `${i === 0 ? '{' : ','}${JSON.stringify(column)}:`);
}

/**
 * rows (objectMode) → NDJSON text, one line per row. Each line leaves as a string (object mode):
 * the Coalescer after it encodes them into its own large Buffers.
 */
export class NdjsonSerializer extends Transform {
  readonly #prefixes: string[];

  constructor(columns: readonly string[]) {
    super({ objectMode: true, highWaterMark: 64 });
    this.#prefixes = ndjsonPrefixes(columns);
  }

  override _transform(row: Row, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(null, ndjsonLine(this.#prefixes, row));
  }
}
