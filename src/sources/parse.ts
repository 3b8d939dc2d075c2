import { getManyValues, isMany, none } from 'stream-chain/defs.js';
import Assembler from 'stream-json/core/assembler.js';
import { jsonParser, type Token } from 'stream-json/core/parser.js';

/**
 * Parses a JSON body as it arrives, chunk by chunk, with stream-json's tokenizer and assembler.
 * The tokenizer runs as a plain function (no Duplex per page) with packed tokens only: see the
 * parser measurements in bench/RESULTS.md. Throws on a body that ends early or is not JSON, so
 * the caller can retry the page.
 */
export async function parseJsonBody(body: AsyncIterable<Uint8Array>): Promise<unknown> {
  // fatal: a body cut inside a multi-byte character is a truncated page, not U+FFFD in the data.
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
  for await (const chunk of body) {
    feed(tokenize(decoder.decode(chunk, { stream: true })));
  }
  feed(tokenize(decoder.decode()));
  feed(tokenize(none as unknown as string));
  if (!assembler.done) throw new SyntaxError('JSON body ended before the value was complete');
  return assembler.current;
}

/** Collects the body, then one `JSON.parse`. */
export async function parseJsonBodyWhole(body: AsyncIterable<Uint8Array>): Promise<unknown> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    length += chunk.length;
  }
  return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, length)));
}
