/**
 * Parquet writer choice: the same rows (emulator albums → the seven contract columns) written as
 * a stream with 50,000-row groups and SNAPPY by hyparquet-writer (through ParquetSerializer, what
 * the pipeline uses) and by @dsnp/parquetjs (the maintained parquetjs fork). Each library runs in
 * its own process, 3 times; prints wall time, peak RSS (VmHWM) and output bytes as JSON lines.
 *
 *   npx node bench/parquet.ts [rows]
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { CONTRACT_COLUMNS } from '../src/core/columns.ts';
import { album } from '../src/emulator/catalogue.ts';
import { ParquetSerializer } from '../src/transforms/parquet.ts';
import { albumToRows } from '../src/transforms/rows.ts';

const rows = Number(process.argv[2] ?? 300_000);
const library = process.argv[3];

function* generate(): Generator<string[]> {
  let n = 0;
  for (let i = 0; n < rows; i++) {
    for (const row of albumToRows(album(5, i, 'https://api.spotify.com'))) {
      if (n++ >= rows) return;
      yield row;
    }
  }
}

class Counter extends Writable {
  bytes = 0;
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.bytes += chunk.length;
    cb();
  }
}

async function runOne(name: string): Promise<number> {
  const out = new Counter();
  if (name === 'hyparquet-writer') {
    const { Readable } = await import('node:stream');
    await pipeline(
      Readable.from(generate()),
      new ParquetSerializer([...CONTRACT_COLUMNS], 50_000),
      out,
    );
  } else {
    const { ParquetSchema, ParquetWriter } = await import('@dsnp/parquetjs');
    const schema = new ParquetSchema(
      Object.fromEntries(
        CONTRACT_COLUMNS.map((c) => [c, { type: 'UTF8', compression: 'SNAPPY' }]),
      ) as never,
    );
    const writer = await ParquetWriter.openStream(
      schema,
      out as never,
      { rowGroupSize: 50_000 } as never,
    );
    for (const row of generate()) {
      await writer.appendRow(Object.fromEntries(CONTRACT_COLUMNS.map((c, i) => [c, row[i]])));
    }
    await writer.close();
  }
  return out.bytes;
}

if (library) {
  const start = performance.now();
  const bytes = await runOne(library);
  const seconds = (performance.now() - start) / 1000;
  const hwm =
    Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
  console.log(JSON.stringify({ library, rows, seconds, rssMiB: Math.round(hwm), bytes }));
} else {
  const self = fileURLToPath(import.meta.url);
  for (const name of ['hyparquet-writer', '@dsnp/parquetjs']) {
    for (let i = 0; i < 3; i++) {
      const r = spawnSync(process.execPath, [self, String(rows), name], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
      process.stdout.write(r.stdout);
    }
  }
}
