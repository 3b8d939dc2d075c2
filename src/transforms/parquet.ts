import { Transform, type TransformCallback } from 'node:stream';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { COLUMN_TYPES, type Column } from '../core/columns.ts';
import type { Row } from './rows.ts';

/**
 * hyparquet-writer's byte writer, emptied into the stream after every row group instead of
 * growing for the whole file. `offset` (bytes written in total) keeps counting, so the footer's
 * offsets stay right.
 */
class StreamingByteWriter extends ByteWriter {
  readonly #emit: (bytes: Buffer) => void;

  constructor(emit: (bytes: Buffer) => void) {
    super(1 << 20);
    this.#emit = emit;
  }

  /** Called by ParquetWriter after each row group (ByteWriter has no flush of its own). */
  flush(): void {
    if (this.index === 0) return;
    this.#emit(Buffer.from(this.buffer.slice(0, this.index)));
    this.index = 0;
  }

  override finish(): void {
    this.flush();
  }
}

/**
 * The most rows in one row group by default: the top of DuckDB's guidance (100k–1M rows per
 * group). The byte budget below decides first for rows like Spotify's.
 */
export const PARQUET_ROW_GROUP_ROWS = 1_000_000;

/**
 * The row data one row group may hold before it is written, counted as the values' lengths
 * (UTF-16 code units; bytes of UTF-8 for ASCII) plus 8 per number or timestamp. The memory this
 * costs is set by hyparquet-writer, which turns every value into its own byte array while it
 * encodes a group: bench/RESULTS.md measures the peak per group size (about 20× the row data
 * here), and 8 MiB of rows — about 45,000 rows of the seven contract columns — is the budget
 * that keeps a Parquet pull near 256 MiB of memory (bench/README.md, "Parquet row groups").
 */
export const PARQUET_ROW_GROUP_BYTES = 8 * 1024 * 1024;

/**
 * rows (objectMode) → a Parquet file as a byte stream, one row group at a time: memory is one
 * row group's column arrays and its encoded bytes, whatever the number of rows. A row group is
 * written when it holds `rowGroupBytes` of row data or `rowGroupRows` rows, whichever comes
 * first. Columns are typed (strings as UTF8, counts as INT32, fetched_at as a timestamp),
 * required, SNAPPY.
 */
export class ParquetSerializer extends Transform {
  readonly #columns: readonly Column[];
  readonly #types: ('STRING' | 'INT32' | 'TIMESTAMP')[];
  readonly #rowGroupRows: number;
  readonly #rowGroupBytes: number;
  readonly #writer: ParquetWriter;
  #data: unknown[][];
  #rows = 0;
  #bytes = 0;

  constructor(
    columns: readonly Column[],
    rowGroupRows = PARQUET_ROW_GROUP_ROWS,
    rowGroupBytes = PARQUET_ROW_GROUP_BYTES,
  ) {
    super({ writableObjectMode: true, writableHighWaterMark: 64 });
    this.#columns = columns;
    this.#types = columns.map((name) => COLUMN_TYPES[name]);
    this.#rowGroupRows = rowGroupRows;
    this.#rowGroupBytes = rowGroupBytes;
    this.#data = columns.map(() => []);
    const byteWriter = new StreamingByteWriter((bytes) => this.push(bytes));
    this.#writer = new ParquetWriter({
      writer: byteWriter,
      schema: [
        { name: 'root', num_children: columns.length },
        ...columns.map((name) => ({ name, ...SCHEMA[COLUMN_TYPES[name]] })),
      ],
      createdBy: 'spotify-batch',
    });
  }

  override _transform(row: Row, _encoding: BufferEncoding, callback: TransformCallback): void {
    let bytes = 0;
    for (let i = 0; i < this.#types.length; i++) {
      const value = row[i] as string;
      const type = this.#types[i];
      if (type === 'STRING') {
        bytes += value.length;
        (this.#data[i] as unknown[]).push(value);
      } else {
        bytes += 8;
        (this.#data[i] as unknown[]).push(type === 'INT32' ? Number(value) : new Date(value));
      }
    }
    this.#rows++;
    this.#bytes += bytes;
    if (this.#rows >= this.#rowGroupRows || this.#bytes >= this.#rowGroupBytes) this.#writeGroup();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.#rows > 0) this.#writeGroup();
      this.#writer.finish();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  #writeGroup(): void {
    const columnData = this.#columns.map((name, i) => ({ name, data: this.#data[i] as unknown[] }));
    this.#writer.write({ columnData: columnData as never, rowGroupSize: this.#rows });
    this.#data = this.#columns.map(() => []);
    this.#rows = 0;
    this.#bytes = 0;
  }
}

const SCHEMA = {
  STRING: { type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  INT32: { type: 'INT32', repetition_type: 'REQUIRED' },
  TIMESTAMP: { type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', repetition_type: 'REQUIRED' },
} as const;
