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

/** Default rows per row group (bench/RESULTS.md: memory grows with it, speed barely). */
export const PARQUET_ROW_GROUP_ROWS = 20_000;

/**
 * rows (objectMode) → a Parquet file as a byte stream, one row group at a time: memory is one
 * row group's column arrays and its encoded bytes, whatever the number of rows. Columns are
 * typed (strings as UTF8, counts as INT32, fetched_at as a timestamp), required, SNAPPY.
 */
export class ParquetSerializer extends Transform {
  readonly #columns: readonly Column[];
  readonly #rowGroupRows: number;
  readonly #writer: ParquetWriter;
  #data: unknown[][];

  constructor(columns: readonly Column[], rowGroupRows = PARQUET_ROW_GROUP_ROWS) {
    super({ writableObjectMode: true, writableHighWaterMark: 64 });
    this.#columns = columns;
    this.#rowGroupRows = rowGroupRows;
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
    for (let i = 0; i < this.#columns.length; i++) {
      const value = row[i] as string;
      const type = COLUMN_TYPES[this.#columns[i] as Column];
      (this.#data[i] as unknown[]).push(
        type === 'STRING' ? value : type === 'INT32' ? Number(value) : new Date(value),
      );
    }
    if ((this.#data[0] as unknown[]).length >= this.#rowGroupRows) this.#writeGroup();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    try {
      if ((this.#data[0] as unknown[]).length > 0) this.#writeGroup();
      this.#writer.finish();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  #writeGroup(): void {
    const columnData = this.#columns.map((name, i) => ({ name, data: this.#data[i] as unknown[] }));
    const rows = (this.#data[0] as unknown[]).length;
    this.#writer.write({ columnData: columnData as never, rowGroupSize: rows });
    this.#data = this.#columns.map(() => []);
  }
}

const SCHEMA = {
  STRING: { type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  INT32: { type: 'INT32', repetition_type: 'REQUIRED' },
  TIMESTAMP: { type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', repetition_type: 'REQUIRED' },
} as const;
