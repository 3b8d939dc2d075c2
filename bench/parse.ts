/**
 * Parser micro-benchmark: one new-releases page of 50 emulator albums (about 51 KB), parsed
 * 300 times per round, 5 rounds, chunked as the network delivers it (16 KiB). Prints MB/s
 * medians for JSON.parse of the whole body (src/sources/parse.ts) and for stream-json's
 * tokenizer + assembler (the parser it replaced; see bench/RESULTS.md).
 *
 *   npx node bench/parse.ts
 */
import { getManyValues, isMany, none } from 'stream-chain/defs.js';
import Assembler from 'stream-json/core/assembler.js';
import { jsonParser, type Token } from 'stream-json/core/parser.js';
import { album } from '../src/emulator/catalogue.ts';
import { parseJsonBody } from '../src/sources/parse.ts';

/**
 * The stream-json page parser this project used before this measurement: its tokenizer as a
 * plain function (no Duplex per page), packed tokens only (the fastest settings), into its
 * Assembler, fed chunk by chunk as the body arrives.
 */
async function parseWithStreamJson(body: AsyncIterable<Uint8Array>): Promise<unknown> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const tokenize = jsonParser({ streamValues: false });
  const assembler = new Assembler();
  const feed = (result: ReturnType<typeof tokenize>): void => {
    if (result === none) return;
    if (isMany(result)) {
      for (const token of getManyValues(result) as Token[]) assembler.consume(token);
    } else {
      assembler.consume(result as unknown as Token);
    }
  };
  for await (const chunk of body) feed(tokenize(decoder.decode(chunk, { stream: true })));
  feed(tokenize(decoder.decode()));
  feed(tokenize(none as unknown as string));
  if (!assembler.done) throw new SyntaxError('JSON body ended before the value was complete');
  return assembler.current;
}

const items = Array.from({ length: 50 }, (_, i) => album(1, i, 'https://api.spotify.com'));
const page = Buffer.from(
  JSON.stringify({
    albums: { href: 'h', items, limit: 50, next: null, offset: 0, previous: null, total: 100 },
  }),
);
const chunks: Buffer[] = [];
for (let i = 0; i < page.length; i += 16_384) chunks.push(page.subarray(i, i + 16_384));
async function* body() {
  yield* chunks;
}

async function measure(
  name: string,
  parse: (b: AsyncIterable<Uint8Array>) => Promise<unknown>,
): Promise<number> {
  const rates: number[] = [];
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    for (let i = 0; i < 300; i++) await parse(body());
    const seconds = (performance.now() - start) / 1000;
    rates.push((page.length * 300) / seconds / 1e6);
  }
  rates.sort((a, b) => a - b);
  const median = rates[2] as number;
  console.log(
    `${name.padEnd(40)} ${median.toFixed(1)} MB/s (min ${rates[0]?.toFixed(1)}, max ${rates[4]?.toFixed(1)})`,
  );
  return median;
}

console.log(`page: ${page.length} bytes, ${chunks.length} chunks; Node ${process.version}`);
const whole = await measure('JSON.parse of the whole body (ours)', parseJsonBody);
const streaming = await measure('stream-json tokenizer + assembler', parseWithStreamJson);
console.log(`ratio JSON.parse / stream-json: ${(whole / streaming).toFixed(1)}x`);
