/**
 * How DuckDB reads a Parquet file the pipeline wrote: its row groups (from the file's footer) and
 * the time of one scan that touches every row (a grouped count over two string columns), median
 * of `runs` after a warm-up, in one DuckDB instance with its default threads (2 cores here).
 *
 *   npx node bench/duckdb.ts FILE [runs]   → one JSON line
 */
import { DuckDBInstance } from '@duckdb/node-api';

const [file, runsArg] = process.argv.slice(2);
if (!file) throw new Error('usage: node bench/duckdb.ts FILE [runs]');
const runs = Number(runsArg ?? 5);
const db = await DuckDBInstance.create(':memory:');
const connection = await db.connect();
const path = file.replaceAll("'", "''");

const groups = (
  await connection.runAndReadAll(
    `SELECT row_group_id, max(row_group_num_rows)::BIGINT AS rows, sum(total_compressed_size)::BIGINT AS bytes FROM parquet_metadata('${path}') GROUP BY row_group_id ORDER BY row_group_id`,
  )
).getRowObjects() as { rows: bigint; bytes: bigint }[];
const rows = groups.map((g) => Number(g.rows));

const query = `SELECT release_date, count(DISTINCT artist_id) AS artists, count(*) AS n FROM read_parquet('${path}') GROUP BY release_date ORDER BY n DESC LIMIT 5`;
await connection.runAndReadAll(query); // warm-up: the file in the page cache, the plan cached
const seconds: number[] = [];
for (let i = 0; i < runs; i++) {
  const start = performance.now();
  await connection.runAndReadAll(query);
  seconds.push((performance.now() - start) / 1000);
}
seconds.sort((a, b) => a - b);
connection.closeSync();
process.stdout.write(
  `${JSON.stringify({
    rowGroups: rows.length,
    rowsPerGroup: { min: Math.min(...rows), max: Math.max(...rows) },
    totalRows: rows.reduce((a, b) => a + b, 0),
    scanSeconds: seconds[runs >> 1],
    scanMin: seconds[0],
    scanMax: seconds[runs - 1],
  })}\n`,
);
