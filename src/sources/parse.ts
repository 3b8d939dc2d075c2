import { isUtf8 } from 'node:buffer';

/**
 * Collects a page's body, then one `JSON.parse`. A page is at most 50 albums (about 60 KB) and
 * is emitted whole anyway (the unit of retry), so parsing it as a stream would save no memory;
 * stream-json's tokenizer costs about 5x the CPU of JSON.parse for it (bench/parse.ts, numbers
 * in bench/README.md), which against a fast source decides the pipeline's throughput.
 * Throws on a body that ends early or is not JSON (the caller retries the page); a body that is
 * not valid UTF-8 (one cut inside a multi-byte character) is an error too, not U+FFFD in the data.
 */
export async function parseJsonBody(
  body: AsyncIterable<Uint8Array>,
  /** Given the body's text once it parsed (the raw landing keeps it verbatim). */
  onText?: (text: string) => void,
): Promise<unknown> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    length += chunk.length;
  }
  // One copy into one Buffer, validated and decoded in one pass each (simdutf, about 10 GB/s
  // and 3.5 GB/s here) and handed to JSON.parse as one flat string: decoding chunk by chunk
  // built a rope that JSON.parse had to flatten first (bench/README.md, "Throughput").
  const bytes = chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks, length);
  if (!isUtf8(bytes)) throw new TypeError('the body is not valid UTF-8');
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // A UTF-8 byte order mark is not part of the JSON (TextDecoder dropped it too).
  const bom = buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf ? 3 : 0;
  const text = buffer.toString('utf8', bom);
  const json = JSON.parse(text);
  onText?.(text);
  return json;
}
