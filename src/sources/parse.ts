/**
 * Collects a page's body, then one `JSON.parse`. A page is at most 50 albums (about 60 KB) and
 * is emitted whole anyway (the unit of retry), so parsing it as a stream would save no memory;
 * stream-json's tokenizer costs about 5x the CPU of JSON.parse for it (bench/parse.ts, numbers
 * in bench/RESULTS.md), which against a fast source decides the pipeline's throughput.
 * Throws on a body that ends early or is not JSON (the caller retries the page); `fatal`
 * decoding makes a body cut inside a multi-byte character an error too, not U+FFFD in the data.
 */
export async function parseJsonBody(
  body: AsyncIterable<Uint8Array>,
  /** Given the body's text once it parsed (the raw landing keeps it verbatim). */
  onText?: (text: string) => void,
): Promise<unknown> {
  // Decoding chunk by chunk into strings avoids one Buffer copy of the page per request.
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let text = '';
  for await (const chunk of body) text += decoder.decode(chunk, { stream: true });
  text += decoder.decode();
  const json = JSON.parse(text);
  onText?.(text);
  return json;
}
