import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { stringify } from 'csv-stringify/sync';
import { CONTRACT_COLUMNS } from '../src/core/columns.ts';
import { album, TRICKY_NAMES } from '../src/emulator/catalogue.ts';
import { COALESCE_BYTES, CsvSerializer, csvRecord } from '../src/transforms/csv.ts';
import { ParquetSerializer } from '../src/transforms/parquet.ts';
import { albumToRows } from '../src/transforms/rows.ts';

/** Runs rows through a serializer; returns the chunks it pushed. */
async function serialize(rows: unknown[][], serializer: import('node:stream').Transform) {
  const chunks: Buffer[] = [];
  await pipeline(
    Readable.from(rows),
    serializer,
    new Writable({
      write(chunk: Buffer, _e, cb) {
        chunks.push(chunk);
        cb();
      },
    }),
  );
  return chunks;
}

const CELLS = [
  ...TRICKY_NAMES,
  '-1',
  '+1',
  '@home',
  '\tlead',
  '\rlead',
  '\uFF1Dfull',
  '\uFF0B',
  '\uFF0D',
  '\uFF20',
  '"',
  '""',
  ',',
  '\n',
  'a\rb',
  "'quoted'",
  ' ',
];

test('CSV cells and records: byte for byte what csv-stringify writes, with and without escaping formulas', () => {
  for (const escapeFormulas of [false, true]) {
    for (const cell of CELLS) {
      const row = [cell, 'x', cell];
      assert.equal(
        csvRecord(row, escapeFormulas),
        stringify([row], { record_delimiter: '\n', escape_formulas: escapeFormulas }),
        `${JSON.stringify(cell)} escapeFormulas=${escapeFormulas}`,
      );
    }
  }
});

test('the CSV serializer writes the header and rows as csv-stringify does, in chunks of at least 64 KiB', async () => {
  const rows: string[][] = [];
  for (let i = 0; rows.length < 5_000; i++) rows.push(...albumToRows(album(9, i, 'http://x')));
  for (const escapeFormulas of [false, true]) {
    const columns = [...CONTRACT_COLUMNS];
    const chunks = await serialize(rows, new CsvSerializer({ columns, escapeFormulas }));
    const expected = stringify(rows, {
      header: true,
      columns,
      record_delimiter: '\n',
      escape_formulas: escapeFormulas,
    });
    assert.ok(Buffer.concat(chunks).equals(Buffer.from(expected)));
    assert.ok(chunks.length > 2, `${chunks.length} chunks`);
    for (const chunk of chunks.slice(0, -1)) assert.ok(chunk.length >= COALESCE_BYTES);
  }
});

test('the CSV serializer writes the header alone when there are no rows', async () => {
  const chunks = await serialize(
    [],
    new CsvSerializer({ columns: ['a', 'b'], escapeFormulas: false }),
  );
  assert.equal(Buffer.concat(chunks).toString(), 'a,b\n');
});

test('Parquet row groups are cut by bytes of row data, or by rows, whichever comes first', async () => {
  const { parquetMetadata } = await import('hyparquet');
  const rows: string[][] = [];
  for (let i = 0; rows.length < 3_000; i++) rows.push(...albumToRows(album(9, i, 'http://x')));
  rows.length = 3_000;
  const groups = async (rowGroupRows: number, rowGroupBytes: number) => {
    const bytes = Buffer.concat(
      await serialize(
        rows,
        new ParquetSerializer([...CONTRACT_COLUMNS], rowGroupRows, rowGroupBytes),
      ),
    );
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
