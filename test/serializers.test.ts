import assert from 'node:assert/strict';
import { Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { stringify } from 'csv-stringify/sync';
import { CONTRACT_COLUMNS } from '../src/core/columns.ts';
import { createStats } from '../src/core/stats.ts';
import { album } from '../src/emulator/catalogue.ts';
import { COALESCE_BYTES, Coalescer } from '../src/transforms/coalesce.ts';
import { createCsvStringifier } from '../src/transforms/csv.ts';
import { NdjsonSerializer } from '../src/transforms/ndjson.ts';
import { ParquetSerializer } from '../src/transforms/parquet.ts';
import { albumToRows } from '../src/transforms/rows.ts';

/** Runs rows through a serializer and the Coalescer; returns the chunks and the bytes counted. */
async function serialize(rows: unknown[][], serializer: Transform) {
  const stats = createStats();
  const chunks: Buffer[] = [];
  await pipeline(
    Readable.from(rows),
    serializer,
    new Coalescer(stats),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        chunks.push(chunk);
        cb();
      },
    }),
  );
  return { chunks, bytes: stats.bytes, text: Buffer.concat(chunks).toString() };
}

const csv = (escapeFormulas: boolean) =>
  createCsvStringifier({ columns: ['a', 'b', 'c'], escapeFormulas });

/** One cell → its bytes in a record, by the README's rules (minimal quoting, `"` doubled). */
const CELLS: [cell: string, plain: string, escaped: string][] = [
  ['Plain Title', 'Plain Title', 'Plain Title'],
  ['', '', ''],
  [' ', ' ', ' '],
  ['Tab\tSeparated', 'Tab\tSeparated', 'Tab\tSeparated'],
  ['Hello, World', '"Hello, World"', '"Hello, World"'],
  ['She said "yes"', '"She said ""yes"""', '"She said ""yes"""'],
  ['Line one\nLine two', '"Line one\nLine two"', '"Line one\nLine two"'],
  ['Carriage\r\nReturn', '"Carriage\r\nReturn"', '"Carriage\r\nReturn"'],
  // A lone CR is quoted: unquoted, csv.reader and pandas' read_csv end the record there.
  ['a\rb', '"a\rb"', '"a\rb"'],
  ['\rlead', '"\rlead"', `"'\rlead"`],
  ['=SUM(A1:A2)', '=SUM(A1:A2)', "'=SUM(A1:A2)"],
  ['-1', '-1', "'-1"],
  ['+1', '+1', "'+1"],
  ['@home', '@home', "'@home"],
  ['\tlead', '\tlead', "'\tlead"],
  ['\uFF1Dfull', '\uFF1Dfull', "'\uFF1Dfull"],
  ['\uFF20', '\uFF20', "'\uFF20"],
  ["'quoted'", "'quoted'", "'quoted'"],
  ['"', '""""', '""""'],
  [',', '","', '","'],
];

test('CSV records: minimal quoting, a lone CR quoted, formulas escaped on request, \\n record ends', async () => {
  for (const escapeFormulas of [false, true]) {
    const { text } = await serialize(
      CELLS.map(([cell]) => [cell, 'x', cell]),
      csv(escapeFormulas),
    );
    const expected = CELLS.map(([, plain, escaped]) => {
      const bytes = escapeFormulas ? escaped : plain;
      return `${bytes},x,${bytes}\n`;
    });
    assert.deepEqual(text, `a,b,c\n${expected.join('')}`, `escapeFormulas=${escapeFormulas}`);
  }
});

test('the CSV header is written alone when there are no rows', async () => {
  const { chunks, bytes, text } = await serialize([], csv(false));
  assert.equal(text, 'a,b,c\n');
  assert.equal(chunks.length, 1);
  assert.equal(bytes, 6);
});

test('CSV and NDJSON leave the Coalescer in chunks of at least 64 KiB, each its own allocation, all bytes counted', async () => {
  const rows: string[][] = [];
  for (let i = 0; rows.length < 5_000; i++) rows.push(...albumToRows(album(9, i, 'http://x')));
  const columns = [...CONTRACT_COLUMNS];
  for (const [name, serializer, expected] of [
    [
      'csv',
      createCsvStringifier({ columns, escapeFormulas: false }),
      stringify(rows, { header: true, columns, quote_record_delimiter: true }),
    ],
    [
      'ndjson',
      new NdjsonSerializer(columns),
      rows
        .map((row) => `${JSON.stringify(Object.fromEntries(columns.map((c, i) => [c, row[i]])))}\n`)
        .join(''),
    ],
  ] as const) {
    const { chunks, bytes, text } = await serialize(rows, serializer);
    assert.equal(text, expected, name);
    assert.equal(bytes, Buffer.byteLength(expected), name);
    assert.ok(chunks.length > 2, `${name}: ${chunks.length} chunks`);
    for (const chunk of chunks.slice(0, -1)) assert.ok(chunk.length >= COALESCE_BYTES, name);
    // Its own allocation: not a slice of the pool, and no two chunks share one.
    for (const chunk of chunks.slice(0, -1)) {
      assert.equal(chunk.byteOffset, 0, name);
      assert.ok(chunk.buffer.byteLength < chunk.length + 16 * 1024, name);
    }
    assert.equal(new Set(chunks.map((c) => c.buffer)).size, chunks.length, name);
  }
});

test('the Coalescer passes large Buffers of their own allocation on as they are, and copies the rest', async () => {
  const big = Buffer.alloc(COALESCE_BYTES * 2, 1);
  const small = Buffer.from('tail');
  const stats = createStats();
  const out: Buffer[] = [];
  await pipeline(
    Readable.from([big, small, big]),
    new Coalescer(stats),
    new Writable({
      write(chunk: Buffer, _e, cb) {
        out.push(chunk);
        cb();
      },
    }),
  );
  assert.equal(out[0]?.buffer, big.buffer);
  assert.ok(Buffer.concat(out.slice(1)).equals(Buffer.concat([small, big])));
  assert.notEqual(out[1]?.buffer, big.buffer);
  assert.equal(stats.bytes, big.length * 2 + small.length);
});

test('Parquet row groups are cut by bytes of row data, or by rows, whichever comes first', async () => {
  const { parquetMetadata } = await import('hyparquet');
  const rows: string[][] = [];
  for (let i = 0; rows.length < 3_000; i++) rows.push(...albumToRows(album(9, i, 'http://x')));
  rows.length = 3_000;
  const groups = async (rowGroupRows: number, rowGroupBytes: number) => {
    const { chunks } = await serialize(
      rows,
      new ParquetSerializer([...CONTRACT_COLUMNS], rowGroupRows, rowGroupBytes),
    );
    const bytes = Buffer.concat(chunks);
    const meta = parquetMetadata(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length),
    );
    return meta.row_groups.map((g) => Number(g.num_rows));
  };
  const dataBytes = rows.reduce((sum, row) => sum + row.reduce((n, v) => n + v.length, 0), 0);
  // By bytes: each group closes on the row that reaches the budget.
  const byBytes = await groups(1_000_000, Math.ceil(dataBytes / 4));
  assert.equal(byBytes.length, 4);
  assert.equal(
    byBytes.reduce((a, b) => a + b, 0),
    rows.length,
  );
  // By rows: the row cap decides when it is the smaller.
  assert.deepEqual(await groups(1_000, 1 << 30), [1_000, 1_000, 1_000]);
});
