/**
 * Parser micro-benchmark: one new-releases page of 50 emulator albums (about 51 KB), parsed
 * 300 times per round, 5 rounds, chunked as the network delivers it (16 KiB). Prints MB/s
 * medians for JSON.parse of the whole body and for stream-json's tokenizer + assembler
 * (what src/sources/parse.ts does).
 *
 *   npx node bench/parse.ts
 */
import { album } from '../src/emulator/catalogue.ts';
import { parseJsonBody, parseJsonBodyWhole } from '../src/sources/parse.ts';

const items = Array.from({ length: 50 }, (_, i) => album(1, i, 'https://api.spotify.com'));
const page = Buffer.from(JSON.stringify({ albums: { href: 'h', items, limit: 50, next: null, offset: 0, previous: null, total: 100 } }));
const chunks: Buffer[] = [];
for (let i = 0; i < page.length; i += 16_384) chunks.push(page.subarray(i, i + 16_384));
async function* body() {
  yield* chunks;
}

async function measure(name: string, parse: (b: AsyncIterable<Uint8Array>) => Promise<unknown>): Promise<number> {
  const rates: number[] = [];
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    for (let i = 0; i < 300; i++) await parse(body());
    const seconds = (performance.now() - start) / 1000;
    rates.push((page.length * 300) / seconds / 1e6);
  }
  rates.sort((a, b) => a - b);
  const median = rates[2] as number;
  console.log(`${name.padEnd(40)} ${median.toFixed(1)} MB/s (min ${rates[0]?.toFixed(1)}, max ${rates[4]?.toFixed(1)})`);
  return median;
}

console.log(`page: ${page.length} bytes, ${chunks.length} chunks; Node ${process.version}`);
const whole = await measure('JSON.parse of the whole body', parseJsonBodyWhole);
const streaming = await measure('stream-json tokenizer + assembler', parseJsonBody);
console.log(`ratio JSON.parse / stream-json: ${(whole / streaming).toFixed(1)}x`);
