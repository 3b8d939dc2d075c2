import type { Transform } from 'node:stream';
import { stringify } from 'csv-stringify';

export interface CsvOptions {
  /** Prefix cells starting with = + - @ tab or CR with `'` (spreadsheet formula injection). */
  escapeFormulas: boolean;
  /** Header names, in row order. */
  columns: readonly string[];
}

/**
 * rows (arrays, in column order) → CSV records, by csv-stringify: `,`, `"` doubled inside
 * quotes, `\n` after every record including the header (the header alone when there are no
 * rows), and quotes only around fields holding the delimiter, a quote, LF or CR — byte for byte
 * what pandas' `to_csv(index=False)` writes (README, "CSV"; test/csv.golden.test.ts).
 *
 * `quote_record_delimiter` is set because csv-stringify turns it off when `record_delimiter` is
 * given: a lone CR then stays unquoted, and Python's csv.reader fails on such a row.
 *
 * Each record leaves as a string (object mode): the Coalescer after it encodes them into its own
 * large Buffers, where csv-stringify's own Buffer per record would be one more copy, from
 * Node's shared pool.
 */
export function createCsvStringifier(options: CsvOptions): Transform {
  return stringify({
    columns: [...options.columns],
    header: true,
    record_delimiter: '\n',
    quote_record_delimiter: true,
    escape_formulas: options.escapeFormulas,
    readableObjectMode: true,
    writableHighWaterMark: 64,
  });
}
